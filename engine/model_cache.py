"""One in-process cache of loaded models, keyed by what makes two loads different.

A second prediction with the same model, device and dtype never reloads. Loading happens under a
per-key lock so that two threads asking for the same model load it once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_key_locks: dict[Hashable, threading.Lock] = {}
_models: dict[Hashable, Any] = {}
load_count: dict[Hashable, int] = {}


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """Return the cached value for `key`, calling `load()` once if it is missing."""
    if key in _models:
        return _models[key]
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        if key not in _models:
            _models[key] = load()
            load_count[key] = load_count.get(key, 0) + 1
        return _models[key]


def evict(predicate: Callable[[Hashable], bool] | None = None) -> int:
    """Drop cached models (all, or those whose key matches); returns how many were dropped."""
    with _lock:
        keys = [k for k in _models if predicate is None or predicate(k)]
        for k in keys:
            del _models[k]
        return len(keys)
