"""Helpers for the params dataclasses (ClassifyParams, ChatParams, FinetuneParams, ...).

Torch-free: the bot, the CLI and `engine.dialogue` import it.

`resolve_params` lets the library functions take either a params object or its fields as
keyword arguments, as a transformers user expects (`engine.classify(texts, model="sentiment")`
as well as `engine.classify(texts, ClassifyParams(model="sentiment"))`). `field_help` reads the
one-sentence `help` each field carries in its metadata (the way peft's configs do), for
`/lm help` and `lmops --help`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def resolve_params(cls: type[T], params: T | None, overrides: Mapping[str, Any], *,
                   caller: str | None = None) -> T:
    """`params`, or a `cls` built from the keyword fields in `overrides`, or `cls()`.

    Raises TypeError for a `params` that is not a `cls`, for an unknown keyword (naming it and
    the known fields), for both a params object and field keywords, and for a missing required
    field. The dataclass's own validation (ValueError) runs as usual.
    """
    where = f"{caller}()" if caller else cls.__name__
    if params is not None and not isinstance(params, cls):
        raise TypeError(f"{where} takes a {cls.__name__} or its fields as keyword arguments, "
                        f"not {type(params).__name__} {params!r}")
    known = [f.name for f in fields(cls)]
    unknown = [name for name in overrides if name not in known]
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        raise TypeError(f"{where} got unexpected keyword argument{s} {', '.join(map(repr, unknown))}; "
                        f"the {cls.__name__} fields are: {', '.join(known)}")
    if params is not None:
        if overrides:
            raise TypeError(f"{where} got both a {cls.__name__} and the keyword argument"
                            f"{'s' if len(overrides) > 1 else ''} {', '.join(overrides)}: give "
                            f"either the params object or its fields as keywords, not both "
                            f"(dataclasses.replace(params, ...) combines them)")
        return params
    missing = [f.name for f in fields(cls)
               if f.default is MISSING and f.default_factory is MISSING and f.name not in overrides]
    if missing:
        raise TypeError(f"{where} needs {', '.join(f'{name}=...' for name in missing)} "
                        f"(or a {cls.__name__})")
    return cls(**overrides)


def field_help(cls: type) -> dict[str, str]:
    """Each field's name and its one-sentence help ("" where a field has none), in field order."""
    return {f.name: f.metadata.get("help", "") for f in fields(cls)}


@functools.cache
def value_type(cls: type, name: str) -> type:
    """How a field's value is written as text (a CLI flag, a `/lm` option): `str`, `int`,
    `float`, `bool`, or `tuple` (comma-separated); `X | None` reads as `X`, a path as text."""
    import types
    import typing
    from pathlib import Path

    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple or hint is tuple:
        return tuple
    if hint in (bool, int, float):
        return hint
    if hint is Path or isinstance(hint, type) and issubclass(hint, Path):
        return str
    return str
