"""lmops engine: the LLM toolkit (models, data, classify, chat, fine-tune, evaluate).

Importing `engine` imports no torch: the heavy functions are loaded on first use, so the bot can
import `engine.data` and `engine.registry` and stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.errors import EngineError

_LAZY = {
    "classify": "engine.classify",
    "ClassifyParams": "engine.classify",
    "chat": "engine.chat",
    "chat_stream": "engine.chat",
    "ChatParams": "engine.chat",
    "evaluate": "engine.evaluate",
    "EvalParams": "engine.evaluate",
    "finetune": "engine.finetune",
    "FinetuneParams": "engine.finetune",
}

__all__ = ["EngineError", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
