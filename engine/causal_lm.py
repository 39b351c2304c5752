"""Causal language models: load them once (GGUF, folders, hub ids, peft adapters) and decode fast.

A GGUF model (the built-in `smollm2`) is de-quantised by transformers the first time (about 20 s
on 2 cores) and saved as a safetensors copy under the cache folder; later loads read that copy
(well under a second). The copy is written to a temporary folder and renamed into place, so a
crash never leaves half a cache.

`FastLlama` decodes Llama-architecture models on CPU without transformers' per-step overhead:
fp32 prefill, then one token at a time on a preallocated KV cache. Weights that lie exactly on a
4-bit grid (as every weight de-quantised from a Q4_1 GGUF does) can be packed for torch's int4
CPU kernel, which reads an eighth of the bytes. The kernel computes in bfloat16, so by default
only the MLP weights are packed: that keeps greedy replies identical to fp32 `generate` (see
docs/benchmarks.md, "Chat latency").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine import model_cache
from engine.devices import default_dtype, resolve_device
from engine.errors import ModelLoadError, UnknownModelError
from engine.registry import ModelRegistry, ModelSpec

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
SOURCE_FILE = "lmops_source.json"
_fast: weakref.WeakKeyDictionary[Any, FastLlama | None] = weakref.WeakKeyDictionary()


def load_causal_lm(
    spec: ModelSpec,
    *,
    device: str = "auto",
    dtype: torch.dtype | None = None,
    cache_dir: Path,
    fast: bool = False,
    registry: ModelRegistry | None = None,
) -> tuple[Any, Any]:
    """The model (in eval mode) and its tokenizer, loaded once per process.

    Cached by (path, gguf_file, device, dtype). `fast=True` also prepares a `FastLlama` for the
    model where it applies (see `fast_decoder`). Adapter folders (`adapter_config.json`) are
    loaded onto their base model, found through `registry` (default: the models folder beside
    `cache_dir`), and merged for inference.
    """
    where = resolve_device(device)
    dtype = dtype or default_dtype(where)
    key = ("causal_lm", spec.path, spec.gguf_file, str(where), str(dtype))
    registry = registry or ModelRegistry(Path(cache_dir).parent / "models")
    model, tokenizer = model_cache.cached(
        (*key, "model"), lambda: _load(spec, where, dtype, Path(cache_dir), registry))
    if fast:
        folder = materialize(spec, cache_dir=Path(cache_dir)) if spec.gguf_file else None
        decoder = model_cache.cached((*key, "fast", id(model)),
                                     lambda: FastLlama.build(model, cache_folder=folder))
        _fast[model] = decoder
    return model, tokenizer


def fast_decoder(model: Any) -> FastLlama | None:
    """The `FastLlama` prepared for `model` by `load_causal_lm(..., fast=True)`, if any."""
    return _fast.get(model)


def materialize(spec: ModelSpec, *, cache_dir: Path) -> Path:
    """A folder `from_pretrained` can read: the model's own, or its safetensors copy for a GGUF."""
    if not spec.gguf_file:
        return Path(spec.path)
    gguf = Path(spec.path) / spec.gguf_file
    if not gguf.is_file():
        raise ModelLoadError(f"model {spec.name!r}: GGUF file {gguf} is missing")
    folder = Path(cache_dir) / f"{re.sub(r'[^A-Za-z0-9._-]', '_', spec.name)[:40]}-{_fingerprint(gguf)}"
    if not (folder / SOURCE_FILE).is_file():
        _convert_gguf(spec, gguf, folder)
    return folder


def _fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """Size, head and tail of a file: a reinstalled identical file keeps its cached copy."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as f:
        digest.update(f.read(chunk))
        f.seek(max(0, path.stat().st_size - chunk))
        digest.update(f.read(chunk))
    return digest.hexdigest()[:12]


def _convert_gguf(spec: ModelSpec, gguf: Path, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors under %s (once; about 20 s)", gguf.name, folder)
    kwargs: dict[str, Any] = {}
    try:  # transformers >= 5.x: ask for a plain dense model, which can be saved
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:
        pass
    try:
        model = AutoModelForCausalLM.from_pretrained(
            spec.path, gguf_file=spec.gguf_file, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(spec.path, gguf_file=spec.gguf_file)
    except Exception as e:
        raise ModelLoadError(f"could not read {gguf}: {e}") from e
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps({"gguf": str(gguf), "name": spec.name}))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first; its copy is as good as ours
            if not (folder / SOURCE_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load(spec: ModelSpec, device: torch.device, dtype: torch.dtype, cache_dir: Path,
          registry: ModelRegistry) -> tuple[Any, Any]:
    model, tokenizer = _load_weights(spec, dtype, cache_dir, registry)
    model.to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _load_weights(spec: ModelSpec, dtype: torch.dtype, cache_dir: Path,
                  registry: ModelRegistry) -> tuple[Any, Any]:
    """Uncached: a fresh model on CPU (adapters are merged into a fresh base, never a shared one)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = materialize(spec, cache_dir=cache_dir)
    if (folder / ADAPTER_CONFIG).is_file():
        return _load_adapter(spec, folder, dtype, cache_dir, registry)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:
        raise ModelLoadError(f"could not load {spec.name!r} as a causal LM from {folder}: {e}") from e
    return model, tokenizer


def _load_adapter(spec: ModelSpec, folder: Path, dtype: torch.dtype, cache_dir: Path,
                  registry: ModelRegistry) -> tuple[Any, Any]:
    from peft import PeftModel
    from transformers import AutoTokenizer

    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    base_spec = _base_spec(spec, config.get("base_model_name_or_path"), registry)
    base, tokenizer = _load_weights(base_spec, dtype, cache_dir, registry)
    try:
        model = PeftModel.from_pretrained(base, str(folder))
    except Exception as e:
        raise ModelLoadError(f"could not load adapter {spec.name!r} onto {base_spec.name!r}: {e}") from e
    if not model.peft_config[model.active_adapter].is_prompt_learning:
        model = model.merge_and_unload()
    if (folder / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return model, tokenizer


def _base_spec(spec: ModelSpec, adapter_base: str | None, registry: ModelRegistry) -> ModelSpec:
    """spec.base or the adapter's own base, preferring one that is here (built in or a folder)."""
    tried = [name for name in (spec.base, adapter_base) if name]
    found = []
    for name in tried:
        try:
            found.append(registry.resolve(name))
        except UnknownModelError:
            continue
    local = [s for s in found if s.builtin or Path(s.path).exists()]
    if local or found:
        return (local or found)[0]
    raise ModelLoadError(f"adapter {spec.name!r}: its base model ({' or '.join(tried) or 'none named'}) "
                         "can't be found")


class _Int4:
    """A weight on a 4-bit grid per group of 32 inputs, packed for torch's int4 CPU kernel."""

    GROUP = 32

    def __init__(self, packed: torch.Tensor, scales: torch.Tensor) -> None:
        self.packed, self.scales, self.out_features = packed, scales, scales.shape[1]

    @classmethod
    def pack(cls, weight: torch.Tensor) -> _Int4 | None:
        """None unless every group is exactly `scale * q + min` with q in 0..15 (lossless only)."""
        n, k = weight.shape
        if k % cls.GROUP:
            return None
        groups = weight.detach().float().reshape(n, k // cls.GROUP, cls.GROUP)
        low, high = torch.aminmax(groups, dim=-1, keepdim=True)
        scale = (high - low) / 15
        steps = (groups - low).div_(torch.where(scale == 0, 1.0, scale))
        q = steps.round()
        if steps.sub_(q).abs_().amax() > 1e-3:
            return None
        q = q.clamp_(0, 15).reshape(n, k).to(torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
        # the kernel computes (q - 8) * scale + zero
        scales = torch.cat([scale, low + 8 * scale], -1).transpose(0, 1).contiguous()
        return cls(packed, scales.to(torch.bfloat16))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, self.GROUP, self.scales)
        return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)


_STATIC_ROPE = {None, "default", "linear", "llama3"}
_PACKABLE = {"attn": ("qkv", "o"), "mlp": ("gate_up", "down")}


def _fused_weight(layer: Any, name: str) -> torch.Tensor:
    a, m = layer.self_attn, layer.mlp
    if name == "qkv":
        return torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
    if name == "gate_up":
        return torch.cat([m.gate_proj.weight, m.up_proj.weight])
    return a.o_proj.weight if name == "o" else m.down_proj.weight


@torch.no_grad()
def _pack_int4(model: Any, pack: tuple[str, ...], cache_file: Path | None) -> dict[str, _Int4]:
    """The packable weights of each layer ("3.gate_up": ...), read from or saved to `cache_file`."""
    from safetensors.torch import load_file, save_file

    if cache_file is not None and cache_file.is_file():
        stored = load_file(str(cache_file))
        return {key[:-7]: _Int4(stored[key], stored[key[:-7] + ".scales"])
                for key in stored if key.endswith(".packed")}
    packed = {}
    for i, layer in enumerate(model.model.layers):
        for name in (name for part in pack for name in _PACKABLE[part]):
            if (weight := _Int4.pack(_fused_weight(layer, name))) is not None:
                packed[f"{i}.{name}"] = weight
    if cache_file is not None:
        tensors = {f"{key}.{part}": getattr(w, part) for key, w in packed.items()
                   for part in ("packed", "scales")}
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
        save_file(tensors, str(tmp))
        os.replace(tmp, cache_file)
    return packed


class FastLlama:
    """Token-at-a-time decoding of a Llama-architecture model on CPU (see the module docstring)."""

    def __init__(self, model: Any, int4: dict[str, _Int4]) -> None:
        c = model.config
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.eps, self.max_positions = c.rms_norm_eps, c.max_position_embeddings
        rotary = model.model.rotary_emb
        self.inv_freq, self.rope_scale = rotary.inv_freq.float(), float(rotary.attention_scaling)
        self.embed, self.norm = model.model.embed_tokens.weight, model.model.norm.weight
        self.head = model.lm_head.weight
        self.packed_weights = len(int4)
        self.layers: list[dict[str, Any]] = []
        for i, layer in enumerate(model.model.layers):
            a, m = layer.self_attn, layer.mlp
            w = {"ln1": layer.input_layernorm.weight, "ln2": layer.post_attention_layernorm.weight,
                 "q": a.q_proj.weight, "k": a.k_proj.weight, "v": a.v_proj.weight,
                 "o": a.o_proj.weight, "gate": m.gate_proj.weight, "up": m.up_proj.weight,
                 "down": m.down_proj.weight}
            w.update({f"{name}4": int4.get(f"{i}.{name}") for name in ("qkv", "o", "gate_up", "down")})
            self.layers.append(w)

    @classmethod
    def build(cls, model: Any, pack: tuple[str, ...] = ("mlp",), cache_folder: Path | None = None
              ) -> FastLlama | None:
        """A decoder for `model`, or None where it doesn't apply (other architectures, GPU, bf16).

        `pack` names the weights to pack where they are on a 4-bit grid: "mlp", "attn" or both.
        The packed weights are kept in `cache_folder` (the GGUF's safetensors copy), if given.
        """
        c = getattr(model, "config", None)
        rope = (getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {})
        supported = (
            c is not None and c.model_type == "llama" and type(model).__name__ == "LlamaForCausalLM"
            and not c.attention_bias and not getattr(c, "mlp_bias", False)
            and c.hidden_act == "silu" and getattr(c, "pretraining_tp", 1) in (None, 1)
            and rope.get("rope_type") in _STATIC_ROPE
            and model.lm_head.weight.device.type == "cpu" and model.lm_head.weight.dtype == torch.float32
        )
        if not supported:
            return None
        name = f"lmops-int4-{'-'.join(sorted(pack))}.safetensors"
        return cls(model, _pack_int4(model, pack, cache_folder / name if cache_folder else None))

    def session(self, capacity: int) -> FastSession:
        """A KV cache for one conversation of at most `capacity` tokens."""
        if capacity > self.max_positions:
            raise ValueError(f"{capacity} tokens is more than the model's {self.max_positions}")
        return FastSession(self, capacity)

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def forward(self, session: FastSession, ids: list[int], *, all_logits: bool = False,
                packed: bool | None = None) -> torch.Tensor:
        """Feed `ids` after what the session has seen; logits of the last (or every) position.

        By default several ids (a prompt) go through the fp32 weights, one id through the packed
        ones; `packed` forces either (the benchmark scores held-out text both ways).
        """
        t, pos = len(ids), session.length
        if t > 1 and pos:
            raise ValueError("feed several tokens only at the start of a session")
        h, kv, d = self.heads, self.kv_heads, self.head_dim
        cos, sin = session.cos[pos:pos + t], session.sin[pos:pos + t]
        x = F.embedding(torch.tensor([ids]), self.embed)
        use4 = t == 1 if packed is None else packed
        for i, w in enumerate(self.layers):
            y = self._rms(x, w["ln1"])
            if use4 and w.get("qkv4") is not None:
                q, k, v = w["qkv4"](y).split([h * d, kv * d, kv * d], -1)
            else:
                q, k, v = F.linear(y, w["q"]), F.linear(y, w["k"]), F.linear(y, w["v"])
            q = _rope(q.view(1, t, h, d).transpose(1, 2), cos, sin)
            session.keys[i][:, :, pos:pos + t] = _rope(k.view(1, t, kv, d).transpose(1, 2), cos, sin)
            session.values[i][:, :, pos:pos + t] = v.view(1, t, kv, d).transpose(1, 2)
            att = F.scaled_dot_product_attention(
                q, session.keys[i][:, :, :pos + t], session.values[i][:, :, :pos + t],
                is_causal=t > 1, enable_gqa=h != kv)
            att = att.transpose(1, 2).reshape(1, t, h * d)
            x = x + (w["o4"](att) if use4 and w.get("o4") is not None else F.linear(att, w["o"]))
            y = self._rms(x, w["ln2"])
            if use4 and w.get("gate_up4") is not None:
                gate, up = w["gate_up4"](y).chunk(2, -1)
            else:
                gate, up = F.linear(y, w["gate"]), F.linear(y, w["up"])
            y = F.silu(gate) * up
            x = x + (w["down4"](y) if use4 and w.get("down4") is not None else F.linear(y, w["down"]))
        session.length += t
        x = x[0] if all_logits else x[0, -1]
        return F.linear(self._rms(x, self.norm), self.head)


class FastSession:
    """The KV cache and rotary tables of one conversation with a `FastLlama`."""

    def __init__(self, decoder: FastLlama, capacity: int) -> None:
        self.decoder, self.length = decoder, 0
        shape = (1, decoder.kv_heads, capacity, decoder.head_dim)
        self.keys = [torch.empty(shape) for _ in decoder.layers]
        self.values = [torch.empty(shape) for _ in decoder.layers]
        freqs = torch.arange(capacity, dtype=torch.float32)[:, None] * decoder.inv_freq[None, :]
        angles = torch.cat((freqs, freqs), -1)
        self.cos, self.sin = angles.cos() * decoder.rope_scale, angles.sin() * decoder.rope_scale

    @torch.inference_mode()
    def feed(self, ids: list[int]) -> torch.Tensor:
        """Logits (fp32, 1-D) for the token after `ids`."""
        return self.decoder.forward(self, ids)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin
