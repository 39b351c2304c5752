"""The registry of job kinds. Each kind lives in its own module, which declares its params,
runner and facts with `register_kind(JobSpec(...))`; this list is the one place that names them.

    from engine.kinds import get_kind, all_kinds
    spec = get_kind("classify")
    params = spec.build({"texts": ["hi"], "labels": ["a", "b"]})   # as the worker does

Loading the registry imports no torch: the runners import the heavy engine modules when they run.
"""

from __future__ import annotations

import importlib

from engine.errors import EngineError
from engine.kinds.spec import JobContext, JobSpec, from_mapping, params_json, register_kind

#: The modules that define the job kinds, one per line.
KIND_MODULES = (
    "engine.kinds.classify",
    "engine.kinds.chat",
    "engine.kinds.evaluate",
    "engine.kinds.finetune",
    "engine.kinds.embed",
    "engine.kinds.noop",
)

_loaded = False


def all_kinds() -> dict[str, JobSpec]:
    """Every job kind by name, in `KIND_MODULES` order."""
    global _loaded
    if not _loaded:
        for module in KIND_MODULES:
            importlib.import_module(module)
        _loaded = True
    from engine.kinds.spec import registered

    return registered()


def get_kind(name: str) -> JobSpec:
    """The spec of job kind `name`; an `EngineError` naming the known ones otherwise."""
    kinds = all_kinds()
    try:
        return kinds[name]
    except KeyError:
        raise EngineError(f"unknown job kind {name!r}; known: {', '.join(kinds)}") from None


__all__ = ["KIND_MODULES", "JobContext", "JobSpec", "all_kinds", "from_mapping", "get_kind",
           "params_json", "register_kind"]
