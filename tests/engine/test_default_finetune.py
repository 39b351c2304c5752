"""A fine-tune with no options on a small, easy 3-label set is worth keeping: at least 90%
held-out accuracy and on average at least 0.7 probability on the right label; the loss it
reports is the kept checkpoint's, and early stopping says where and why it stopped."""

from __future__ import annotations

import pytest

import engine
from engine.finetune_params import FinetuneParams
from support_tickets import tickets, write_tickets

pytestmark = pytest.mark.slow


def test_a_default_finetune_on_120_tickets_is_sure_of_its_labels(settings, tmp_path):
    train = write_tickets(tmp_path / "tickets.csv", tickets("train", per_label=40))
    held_out = tickets("held_out", per_label=20)
    assert not {t for t, _ in held_out} & {t for t, _ in tickets("train", per_label=40)}
    seen = []
    result = engine.finetune(FinetuneParams(data=str(train), name="tickets-default"),
                             settings=settings, progress=seen.append, output_dir=tmp_path / "out")
    predictions = engine.classify([t for t, _ in held_out], model="tickets-default",
                                  settings=settings)
    accuracy = sum(p.label == label for p, (_, label) in zip(predictions, held_out)) / len(held_out)
    sureness = sum(p.scores[label] for p, (_, label) in zip(predictions, held_out)) / len(held_out)
    assert accuracy >= 0.9, accuracy
    assert sureness >= 0.7, sureness
    # the loss reported is the kept checkpoint's: the lowest validation loss seen
    losses = [p.validation["loss"] for p in seen if "loss" in p.validation]
    assert result.metrics["loss"] is not None and min(losses) <= losses[0]
    if result.stopped_early:  # and then every surface can say so
        last = seen[-1]
        assert last.stage == "stopped" and last.stopped_early == result.stopped_early
        assert last.stop_note.startswith(f"stopped early at step {last.step} of ")
        assert "stopped improving for" in last.stop_note
