"""The `embed` job kind and `engine.embed`: unit-length sentence vectors from an encoder
(mean pooling, as the zero-shot classifier uses), for knowledge bases and the API.

    engine.embed(["reset my password"], model="minilm")   # numpy array (n, 384), rows of norm 1
    lmops embed --json "reset my password"                 # [{"text", "vector": [...]}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engine.devices import check_device
from engine.kinds.spec import PRIORITY_PREDICT, CliCommand, JobContext, JobSpec, register_kind
from engine.params import resolve_params


@dataclass(frozen=True)
class EmbedParams:
    """The texts to embed and the encoder that embeds them."""

    texts: tuple[str, ...] = field(default=(), metadata={"help": "the texts to embed"})
    model: str = field(default="minilm", metadata={"help": "the encoder (`lmops models`: task embed)"})
    device: str = field(default="auto", metadata={"help": "where the model runs",
                                                   "choices": ("auto", "cpu", "cuda")})
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass"})

    def __post_init__(self) -> None:
        texts = self.texts
        if not texts or not isinstance(texts, (list, tuple)) or \
                not all(isinstance(t, str) for t in texts):
            raise ValueError("embed needs texts: a list of strings")
        object.__setattr__(self, "texts", tuple(texts))
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model {self.model!r} is not a model name")
        check_device(self.device)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")


def embed(texts: str | Sequence[str], params: EmbedParams | None = None, *, settings=None,
          registry=None, **fields: Any):
    """Unit-length embeddings of `texts` (a numpy array, one row per text, in order).
    `fields` are `EmbedParams` fields: `embed(texts, model="minilm", device="cpu")`."""
    from engine.classification import embed as encode
    from engine.errors import NoClassifierError
    from engine.registry import ModelRegistry
    from engine.settings import get_settings

    texts = (texts,) if isinstance(texts, str) else tuple(texts)
    if params is None:
        params = resolve_params(EmbedParams, None, {**fields, "texts": texts}, caller="embed")
    else:
        params = replace(resolve_params(EmbedParams, params, fields, caller="embed"),
                         texts=texts)
    registry = registry or ModelRegistry((settings or get_settings()).models_dir)
    spec = registry.resolve(params.model)
    if spec.task != "embed":
        raise NoClassifierError(f"{spec.name!r} is a {spec.task} model, not an encoder; "
                                "`lmops models` lists the embed models")
    vectors, _ = encode(list(params.texts), spec, device=params.device,
                        batch_size=params.batch_size)
    return vectors.numpy()


def run(params: EmbedParams, ctx: JobContext) -> dict[str, Any]:
    vectors = embed(params.texts, params, settings=ctx.settings, registry=ctx.registry)
    return {"embeddings": [{"text": text, "vector": [round(float(x), 7) for x in vector]}
                           for text, vector in zip(params.texts, vectors, strict=True)],
            "model": params.model}


def summarize(result: Mapping[str, Any]) -> str:
    rows = result.get("embeddings") or []
    return f"{len(rows)} vectors of {len(rows[0]['vector'])} dims" if rows else "no vectors"


def show(result: Mapping[str, Any]) -> str:
    lines = []
    for row in result.get("embeddings") or []:
        head = " ".join(f"{x:+.3f}" for x in row["vector"][:4])
        text = row["text"] if len(row["text"]) <= 50 else row["text"][:49] + "…"
        lines.append(f"[{head} … ] ({len(row['vector'])} dims)  {text}")
    return "\n".join(lines)


SPEC = register_kind(JobSpec(
    name="embed", params=EmbedParams, run=run, priority=PRIORITY_PREDICT, lane="predictions",
    summarize=summarize, title="Embedding", function="engine.kinds.embed:embed",
    cli=CliCommand(help="unit-length sentence embeddings of texts", inputs="texts",
                   options=("model", "device", "batch_size"), show=show,
                   to_json=lambda result: result["embeddings"],
                   example='lmops embed --json "reset my password"')))
