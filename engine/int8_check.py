"""Whether int8 is safe for a fine-tuned classifier. Measured on the model's held-out rows when
its fine-tune ends, stored in its metrics (`metrics["int8"]`), and read by `classify`: without
an explicit `quantize`, a model runs int8 only where the check said so (issue 3's rule: at least
99.5% of the labels as fp32 and accuracy within half a point, on at least 200 rows, since
fewer can't show a 0.5% difference). Torch-free until a check runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.classify_params import ClassifyParams
from engine.registry import ModelRegistry, ModelSpec

MIN_AGREEMENT = 0.995
MAX_ACCURACY_DROP = 0.005
MIN_ROWS = 200
MAX_ROWS = 2000  # enough to tell, cheap enough to run after every fine-tune


def int8_verdict(fp32: Sequence[str], int8: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    """Agreement and accuracies of int8 against fp32 labels, and whether int8 may be the default."""
    if not len(fp32) == len(int8) == len(gold):
        raise ValueError("fp32, int8 and gold labels must be as many")
    n = len(gold)
    agreement = sum(a == b for a, b in zip(fp32, int8)) / n if n else 0.0
    accuracy_fp32 = sum(a == g for a, g in zip(fp32, gold)) / n if n else 0.0
    accuracy_int8 = sum(a == g for a, g in zip(int8, gold)) / n if n else 0.0
    tolerance = 1e-9  # 995/1000 is 99.5%, whatever the float rounding says
    default = (n >= MIN_ROWS and agreement >= MIN_AGREEMENT - tolerance
               and accuracy_fp32 - accuracy_int8 <= MAX_ACCURACY_DROP + tolerance)
    return {"n": n, "agreement": agreement, "accuracy_fp32": accuracy_fp32,
            "accuracy_int8": accuracy_int8, "default": default}


class _WithCandidate:
    """A read-only catalog: the model being checked (not registered yet) beside the others."""

    def __init__(self, candidate: ModelSpec, registry: ModelRegistry) -> None:
        self.candidate, self.registry = candidate, registry

    def list(self) -> list[ModelSpec]:
        return [self.candidate, *self.registry.catalog.list()]

    def register(self, spec: ModelSpec) -> ModelSpec:
        raise TypeError("the int8 check registers nothing")


def check_int8(candidate: ModelSpec, texts: Sequence[str], gold: Sequence[str],
               registry: ModelRegistry) -> dict[str, Any]:
    """Classify `texts` with the `candidate` model in fp32 and int8 (on the CPU) and compare;
    the loaded copies are dropped from the model cache afterwards."""
    from engine import model_cache
    from engine.classification import classify

    texts, gold = list(texts)[:MAX_ROWS], list(gold)[:MAX_ROWS]
    with_candidate = ModelRegistry(catalog=_WithCandidate(candidate, registry))
    labels = {}
    try:
        for quantize in (False, True):
            params = ClassifyParams(model=candidate.name, device="cpu", quantize=quantize)
            labels[quantize] = [p.label for p in classify(texts, params, registry=with_candidate)]
    finally:  # engine.encoders keys its classifiers ("classifier", path, ...)
        model_cache.evict(lambda key: key[:2] == ("classifier", candidate.path))
    return int8_verdict(labels[False], labels[True], gold)


def int8_by_default(spec: ModelSpec) -> bool:
    """Whether `spec`'s own int8 check allows int8 by default (False where none was made)."""
    check = (spec.metrics or {}).get("int8")
    return bool(isinstance(check, dict) and check.get("default"))
