"""engine.dialogue and engine.causal_lm: replies, streaming, history, bad input, loading once,
the GGUF's safetensors copy, the fast CPU decoder against transformers' generate, adapters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import causal_lm, model_cache
from engine.dialogue import ChatParams, ChatReply, chat, chat_stream
from engine.errors import DataError, EngineError, UnknownModelError

TOKENS = 8
CPU = {"device": "cpu", "max_new_tokens": TOKENS}


@pytest.mark.parametrize("field, value", [
    ("temperature", -0.1), ("temperature", float("nan")), ("top_p", 0.0), ("top_p", 1.5),
    ("max_new_tokens", 0), ("max_new_tokens", -3), ("max_new_tokens", 2.5), ("model", ""),
    ("device", "tpu"),
])
def test_bad_params_name_the_value(field, value):
    with pytest.raises(ValueError, match=field) as error:
        ChatParams(**{field: value})
    assert repr(value) in str(error.value)


@pytest.mark.parametrize("messages, message", [
    ("", "empty message"),
    ("   \n", "empty message"),
    ([], "empty message"),
    ([{"role": "user", "content": "hi"}, {"role": "user", "content": " "}], "empty message"),
    ([{"role": "bot", "content": "hi"}], "role 'bot'"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "last message"),
    ([{"role": "user", "text": "hi"}], "message 1"),
    ([{"role": "user", "content": 3}], "message 1"),
    ({"role": "user", "content": "hi"}, "not dict"),
])
def test_bad_messages_are_refused_before_loading(messages, message, settings):
    with pytest.raises(DataError, match=message):
        chat(messages, ChatParams(**CPU), settings=settings)


def test_unknown_and_non_chat_models(settings):
    with pytest.raises(UnknownModelError, match="known models"):
        chat("hi", ChatParams(model="no-such-model", **CPU), settings=settings)
    with pytest.raises(EngineError, match="not a chat model"):
        chat("hi", ChatParams(model="minilm", **CPU), settings=settings)


def test_chat_replies(smollm2, settings):
    result = chat("What is the capital of France?", ChatParams(**CPU), settings=settings)
    assert isinstance(result, ChatReply)
    assert result.reply.strip() and result.reply == result.reply.strip()
    assert "Paris" in result.reply
    assert 0 < result.tokens <= TOKENS
    assert result.to_json() == {"reply": result.reply, "model": "smollm2",
                                "finish_reason": "stop", "truncated": False}


def test_greedy_is_deterministic_and_the_stream_joins_to_the_reply(smollm2, settings):
    params = ChatParams(**CPU)
    first = chat("Why is the sky blue?", params, settings=settings)
    assert chat("Why is the sky blue?", params, settings=settings).reply == first.reply
    chunks = list(chat_stream("Why is the sky blue?", params, settings=settings))
    assert len(chunks) > 1
    assert "".join(chunks) == first.reply


def test_history_and_system_prompt(smollm2, settings):
    history = [
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Nice to meet you, Ann!"},
        {"role": "user", "content": "What is my name?"},
    ]
    params = ChatParams(system="You are a terse assistant.", **CPU)
    assert chat(history, params, settings=settings).reply


def test_sampling_gives_a_reply(smollm2, settings):
    torch.manual_seed(0)
    result = chat("Write a haiku about the sea.",
                  ChatParams(temperature=0.8, top_p=0.9, **CPU), settings=settings)
    assert result.reply and result.tokens <= TOKENS


def test_fast_decoder_matches_generate(smollm2, settings, monkeypatch):
    """The default CPU path (FastLlama, MLP packed int4) gives transformers' greedy reply."""
    assert causal_lm.fast_decoder(smollm2.model) is not None
    assert causal_lm.fast_decoder(smollm2.model).packed_weights == 60  # every MLP weight packed
    params = ChatParams(device="cpu", max_new_tokens=16)
    message = "How do I reset my password?"
    fast = chat(message, params, settings=settings)
    monkeypatch.setattr(causal_lm, "fast_decoder", lambda model: None)  # generate() in a thread
    plain = chat(message, params, settings=settings)
    assert fast.reply == plain.reply and fast.tokens == plain.tokens == 16
    chunks = list(chat_stream(message, params, settings=settings))
    assert "".join(chunks) == plain.reply


def test_the_model_loads_once(smollm2, settings):
    keys = [k for k in model_cache.load_count if k[:3] == ("causal_lm", smollm2.spec.path, smollm2.spec.gguf_file)
            and k[-1] == "model" and k[3] == "cpu" and k[4] == str(torch.float32)]
    for _ in range(2):
        chat("Hello!", ChatParams(device="cpu", max_new_tokens=2), settings=settings)
    assert len(keys) == 1 and model_cache.load_count[keys[0]] == 1


def test_the_safetensors_copy_is_reused(smollm2, settings, monkeypatch):
    folder = causal_lm.materialize(smollm2.spec, cache_dir=settings.cache_dir)
    assert (folder / "model.safetensors").is_file() and (folder / "chat_template.jinja").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no leftovers

    def no_conversion(*args):
        raise AssertionError("the GGUF was converted again")

    monkeypatch.setattr(causal_lm, "_convert_gguf", no_conversion)
    # a new cache key (bf16) forces a real load, which must read the copy
    model, tokenizer = causal_lm.load_causal_lm(smollm2.spec, device="cpu", dtype=torch.bfloat16,
                                                cache_dir=settings.cache_dir)
    assert model.dtype == torch.bfloat16 and tokenizer.chat_template
    model_cache.evict(lambda key: key[:2] == ("causal_lm", smollm2.spec.path) and str(torch.bfloat16) in key)


def test_lora_adapter_is_merged(smollm2, settings, tmp_path: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        str(causal_lm.materialize(smollm2.spec, cache_dir=settings.cache_dir)))
    torch.manual_seed(0)
    lora = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    folder = tmp_path / "smol-lora"
    lora.save_pretrained(folder)
    (folder / "lmops_model.json").write_text(json.dumps(
        {"name": "smol-lora", "task": "chat", "path": ".", "base": "smollm2", "method": "lora"}))
    reply = chat("Hello!", ChatParams(model=str(folder), device="cpu", max_new_tokens=4),
                 settings=settings)
    assert reply.tokens > 0
    key = next(k for k in model_cache.load_count if k[1] == str(folder.resolve()) and k[-1] == "model")
    model, _ = model_cache.cached(key, lambda: None)
    assert type(model).__name__ == "LlamaForCausalLM"  # merged, no peft wrapper left
    q = model.model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(q, smollm2.model.model.layers[0].self_attn.q_proj.weight)
    model_cache.evict(lambda k: k[1] == str(folder.resolve()))


def test_importing_dialogue_imports_no_torch():
    code = "import sys, engine.dialogue; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# --- cut replies and long conversations (issue 12, item 4) ---------------------------------------


@pytest.mark.parametrize("text, keep, expected", [
    ("One sentence here. Two sentences there. Three is not fin", 0.6,
     "One sentence here. Two sentences there."),
    ("First line\nsecond line that goes on and", 0.6, None),  # that would lose too much
    ("Step one is done. Step two is to open the settings and", 0.6, None),
    ("Open *Settings*. Then click _Reset_! Then wait for the mail to", 0.5,
     "Open *Settings*. Then click _Reset_!"),
    ("1. Open the page\n2. Click", 0.5, "1. Open the page"),  # "2." ends no sentence
    ("It costs $5. And then you pay", 0.3, None),  # nor does "$5."
    ("It ended here.", 0.6, None),
])
def test_a_cut_reply_ends_at_a_sentence_where_little_is_lost(text, keep, expected):
    from engine.dialogue import sentence_end

    assert sentence_end(text, keep=keep) == (expected or text)


def test_a_reply_cut_at_max_new_tokens_says_so(smollm2, settings):
    cut = chat("Tell me a long story about a dragon who learns to cook.",
               ChatParams(device="cpu", max_new_tokens=24), settings=settings)
    assert cut.finish_reason == "length" and cut.truncated and cut.tokens == 24
    assert cut.to_json()["truncated"] is True and cut.to_json()["max_new_tokens"] == 24
    assert cut.to_json()["finish_reason"] == "length" and "input_truncated" not in cut.to_json()
    whole = chat("Answer with one word: what colour is the sky on a clear day?",
                 ChatParams(device="cpu", max_new_tokens=64), settings=settings)
    assert whole.finish_reason == "stop" and not whole.truncated and whole.tokens < 64
    stream = chat_stream("Tell me a long story about a dragon who learns to cook.",
                         ChatParams(device="cpu", max_new_tokens=24), settings=settings)
    assert stream.finish_reason is None  # not read yet
    text = "".join(stream)
    assert stream.finish_reason == "length" and stream.result().reply == cut.reply
    assert text.startswith(cut.reply)  # the stream has all of it; the reply ends at a sentence


def test_the_chat_job_result_marks_a_cut_reply(smollm2, settings):
    from engine.kinds import get_kind
    from engine.kinds.spec import JobContext

    spec = get_kind("chat")
    job = spec.build({"messages": [{"role": "user", "content": "Explain how rain forms."}],
                      "max_new_tokens": 16, "device": "cpu"})
    result = spec.run(job, JobContext(settings=settings, registry=smollm2.registry, job_id=1))
    assert result["truncated"] is True and result["finish_reason"] == "length"
    assert result["max_new_tokens"] == 16 and result["reply"] and result["model"] == "smollm2"


def test_a_long_message_is_shortened_to_its_end(smollm2, settings, monkeypatch):
    """Past the model's context (8192 for smollm2; 256 here), the start of the message goes."""
    from engine.dialogue import fit_conversation

    monkeypatch.setattr(smollm2.model.config, "max_position_embeddings", 256)
    long = " ".join(f"word{i}" for i in range(400)) + " So, what is the capital of France?"
    reply = chat(long, ChatParams(device="cpu", max_new_tokens=8, system="Be brief."),
                 settings=settings)
    assert reply.reply and reply.shortened_to and reply.shortened_to < 256 - 8
    assert reply.dropped_messages == 0
    assert reply.to_json()["input_truncated"] is True
    assert reply.to_json()["shortened_to"] == reply.shortened_to
    stats: dict = {}
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": long}]
    ids = fit_conversation(smollm2.tokenizer, conversation, 248, stats)
    prompt = smollm2.tokenizer.decode(ids)
    assert len(ids) <= 248 and stats["shortened_to"] == reply.shortened_to
    assert "Be brief." in prompt and "what is the capital of France?" in prompt
    assert "word0 " not in prompt and "word399" in prompt


def test_the_oldest_turns_are_left_out_first(smollm2, settings, monkeypatch):
    from engine.dialogue import fit_conversation

    turns = []
    for i in range(12):
        turns += [{"role": "user", "content": f"Question {i}: " + "tell me more " * 6},
                  {"role": "assistant", "content": f"Answer {i}: " + "here is more " * 6}]
    conversation = [{"role": "system", "content": "You are terse."}, *turns,
                    {"role": "user", "content": "What was question 11 about?"}]
    stats: dict = {}
    ids = fit_conversation(smollm2.tokenizer, conversation, 300, stats)
    prompt = smollm2.tokenizer.decode(ids)
    assert len(ids) <= 300 and 0 < stats["dropped_messages"] < len(turns)
    assert "shortened_to" not in stats
    assert "You are terse." in prompt and "What was question 11 about?" in prompt
    assert "Answer 11" in prompt and "Question 0:" not in prompt
    # one fewer dropped turn would not fit
    kept = conversation[1 + stats["dropped_messages"] - 1:]
    assert len(fit_conversation(smollm2.tokenizer, [conversation[0], *kept], None, {})) > 300
    monkeypatch.setattr(smollm2.model.config, "max_position_embeddings", 300 + 16)
    reply = chat(conversation, ChatParams(device="cpu", max_new_tokens=16), settings=settings)
    assert reply.dropped_messages == stats["dropped_messages"] and reply.shortened_to is None


def test_a_system_prompt_too_long_for_the_model_is_refused(smollm2, settings, monkeypatch):
    monkeypatch.setattr(smollm2.model.config, "max_position_embeddings", 64)
    with pytest.raises(DataError, match="too long for smollm2: the system prompt"):
        chat("hi", ChatParams(device="cpu", max_new_tokens=8, system="be kind " * 60),
             settings=settings)
