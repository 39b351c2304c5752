"""Where a model runs: CUDA with bf16 where available, else CPU with fp32.

Torch is imported inside the functions, so the device names can be validated without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import EngineError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str) -> None:
    """Raise ValueError unless `device` is auto, cpu, cuda or cuda:N (no torch needed)."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"device {device!r} is not one of {', '.join(DEVICES)}")


def resolve_device(device: str = "auto") -> torch.device:
    import torch

    if device not in DEVICES and not device.startswith("cuda:"):
        raise EngineError(f"unknown device {device!r}; use one of: cpu, cuda, auto")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(f"device {device!r} asked for, but no CUDA device is available; use --device cpu")
    return torch.device(device)


def default_dtype(device: torch.device) -> torch.dtype:
    import torch

    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
