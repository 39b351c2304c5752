"""lmops engine: the LLM toolkit (models, data, classify, chat, fine-tune, evaluate).

Importing `engine` imports no torch: the heavy functions are loaded on first use, so the bot can
import `engine.data` and `engine.registry` and stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.errors import EngineError

_LAZY = {
    "classify": "engine.classification",
    "ClassifyParams": "engine.classify_params",
    "chat": "engine.dialogue",
    "chat_stream": "engine.dialogue",
    "ChatParams": "engine.dialogue",
    "evaluate": "engine.evaluation",
    "EvalParams": "engine.eval_params",
    "finetune": "engine.finetuning",
    "FinetuneParams": "engine.finetune_params",
}

__all__ = ["EngineError", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    # a job kind's library function, declared in its spec (`engine.embed`, ...)
    from engine.kinds import all_kinds

    spec = all_kinds().get(name)
    if spec is None or spec.function is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module, function = spec.function.split(":")
    return getattr(importlib.import_module(module), function)
