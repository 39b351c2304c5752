"""PEFT methods: our method names turned into peft's own config objects, with per-architecture
default target modules. `full` means no adapter: every weight trains."""

from __future__ import annotations

from typing import Any

from engine.errors import EngineError

METHODS = ("lora", "adalora", "ia3", "prefix", "full")

# Linear layers worth adapting, by `config.model_type`. Unknown architectures use peft's
# "all-linear", which finds every Linear layer but the output head.
LORA_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}
# (IA)^3 scales keys, values and the feed-forward output: peft's own defaults by model type
# (`default_ia3_targets`); these are only used for model types peft has no entry for.
IA3_FALLBACK_TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "bert": (["key", "value", "output.dense"], ["output.dense"]),
    "roberta": (["key", "value", "output.dense"], ["output.dense"]),
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "mistral": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen2": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
}


def default_lora_targets(model_type: str) -> list[str] | str:
    return LORA_TARGETS.get(model_type, "all-linear")


def default_ia3_targets(model_type: str) -> tuple[list[str] | None, list[str] | None]:
    """(target modules, feed-forward modules) for (IA)^3 on `model_type` models: peft's
    mapping, else `IA3_FALLBACK_TARGETS`, else (None, None)."""
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as PEFT_FEEDFORWARD,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_TARGETS,
    )

    if model_type in PEFT_TARGETS and model_type in PEFT_FEEDFORWARD:
        return list(PEFT_TARGETS[model_type]), list(PEFT_FEEDFORWARD[model_type])
    targets, feedforward = IA3_FALLBACK_TARGETS.get(model_type, (None, None))
    return (list(targets) if targets else None), (list(feedforward) if feedforward else None)


def build_peft_config(
    method: str,
    *,
    task: str,
    model_type: str,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    target_modules: list[str] | None = None,
    total_steps: int | None = None,
    num_virtual_tokens: int = 16,
    supports_past_key_values: bool = True,
) -> Any | None:
    """peft config for `method` (None for full fine-tuning).

    `prefix` on a model whose layers take no past key/values (encoders such as BERT in
    transformers 5) becomes prompt tuning: the trained prefix sits in front of the input
    embeddings instead of in front of every layer's keys and values.
    """
    from peft import (
        AdaLoraConfig,
        IA3Config,
        LoraConfig,
        PrefixTuningConfig,
        PromptTuningConfig,
        TaskType,
    )

    if method not in METHODS:
        raise EngineError(f"unknown method {method!r}; use one of: {', '.join(METHODS)}")
    task_type = TaskType.SEQ_CLS if task == "classify" else TaskType.CAUSAL_LM
    if method == "full":
        return None
    if method == "lora":
        return LoraConfig(task_type=task_type, r=r, lora_alpha=alpha, lora_dropout=dropout,
                          target_modules=target_modules or default_lora_targets(model_type))
    if method == "adalora":
        if not total_steps:
            raise EngineError("adalora needs the number of training steps")
        return AdaLoraConfig(
            task_type=task_type, init_r=max(r, 4), target_r=max(r // 2, 2), lora_alpha=alpha,
            lora_dropout=dropout, total_step=total_steps,
            tinit=max(total_steps // 10, 0), tfinal=max(total_steps // 5, 0),
            deltaT=max(total_steps // 20, 1),
            target_modules=target_modules or default_lora_targets(model_type))
    if method == "ia3":
        targets, feedforward = default_ia3_targets(model_type)
        if target_modules:
            targets, feedforward = target_modules, [m for m in target_modules if m in (feedforward or [])]
        if targets is None:
            raise EngineError(f"no default (IA)^3 target modules for {model_type!r} models; "
                              "name them with target_modules")
        return IA3Config(task_type=task_type, target_modules=targets, feedforward_modules=feedforward)
    if not supports_past_key_values:
        return PromptTuningConfig(task_type=task_type, num_virtual_tokens=num_virtual_tokens)
    return PrefixTuningConfig(task_type=task_type, num_virtual_tokens=num_virtual_tokens)


def supports_past_key_values(model) -> bool:
    """Whether the model's transformer body accepts `past_key_values` (prefix tuning needs it)."""
    import inspect

    body = getattr(model, model.base_model_prefix, model)
    return "past_key_values" in inspect.signature(body.forward).parameters
