"""Dropout whose masks come from NumPy's PCG64 generator: on CPU, torch's `bernoulli_` draws
about 4x slower, and a LoRA fine-tune of a small encoder on short texts spends a third of each
step there (every adapted Linear drops out its input; `bench/finetune_throughput.py`).

The layer is the same inverted dropout as `torch.nn.Dropout` (an independent mask per call,
kept values scaled by 1/(1-p)), with p rounded to a multiple of 1/65536. Only CPU fine-tunes
use it; CUDA's generator is fast. The generator's state goes into each checkpoint
(`engine.training_callbacks.DropoutRngCheckpoint`), so a resumed fine-tune draws the masks an
uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

_LEVELS = 1 << 16


class FastDropout(nn.Module):
    """`nn.Dropout(p)` drawing its masks from `rng` on CPU (torch's own dropout elsewhere)."""

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), not {p}")
        self.p = p
        self.rng = rng
        dropped = round(p * _LEVELS)
        self._threshold = dropped - _LEVELS // 2  # int16 draws below it are dropped
        self._scale = _LEVELS / (_LEVELS - dropped)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        draws = torch.from_numpy(self.rng.integers(-_LEVELS // 2, _LEVELS // 2, size=x.shape,
                                                   dtype=np.int16))
        return x * ((draws >= self._threshold).to(x.dtype) * self._scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_fast_dropout(model: nn.Module, rng: np.random.Generator) -> int:
    """Replace every `nn.Dropout` with p > 0 in `model` by a `FastDropout` drawing from `rng`;
    returns how many were replaced."""
    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout and child.p > 0:
                setattr(module, name, FastDropout(child.p, rng))
                replaced += 1
    return replaced
