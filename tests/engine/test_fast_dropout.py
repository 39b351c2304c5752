"""FastDropout behaves as torch's inverted dropout: same drop rate, kept values scaled, the
gradient masked alike, identity in eval mode, reproducible from its seed."""

import numpy as np
import pytest
import torch
from torch import nn

from engine.fast_dropout import FastDropout, use_fast_dropout


def test_drops_at_rate_p_and_scales_what_it_keeps():
    layer = FastDropout(0.1, np.random.default_rng(0)).train()
    x = torch.ones(400, 1000, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert 1 - kept.float().mean().item() == pytest.approx(0.1, abs=0.003)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 65536 / (65536 - round(0.1 * 65536))))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept)


def test_masks_differ_between_calls_and_repeat_with_the_seed():
    x = torch.randn(64, 64)
    first = FastDropout(0.5, np.random.default_rng(7)).train()
    a, b = first(x), first(x)
    assert not torch.equal(a, b)
    again = FastDropout(0.5, np.random.default_rng(7)).train()
    assert torch.equal(again(x), a)


def test_eval_mode_and_p_zero_are_the_identity():
    x = torch.randn(8, 8)
    assert FastDropout(0.3, np.random.default_rng(0)).eval()(x) is x
    assert FastDropout(0.0, np.random.default_rng(0)).train()(x) is x
    with pytest.raises(ValueError, match="probability"):
        FastDropout(1.0, np.random.default_rng(0))


def test_use_fast_dropout_replaces_only_active_dropout_layers():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.2)),
                          nn.Dropout(0.0))
    assert use_fast_dropout(model, np.random.default_rng(0)) == 2
    assert isinstance(model[1], FastDropout) and model[1].p == 0.1
    assert isinstance(model[2][0], FastDropout) and model[2][0].p == 0.2
    assert type(model[3]) is nn.Dropout
