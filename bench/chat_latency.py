"""Time to first token and tokens/s of engine.chat on smollm2 against plain fp32 greedy generate.

    .venv/bin/python bench/chat_latency.py [--tokens 64] [--repeats 5] [--ppl-texts 30] [--threads N]

Same model object, same prompt, same run; the paths are interleaved in each repeat, so a busy
machine slows all of them alike (the median and the best repeat are printed). Also: load time
from the cache (in this process and in a fresh one), and the quality rule for any path that computes in lower precision: greedy
output identical to plain generate for the first 32 tokens on at least 9 of 10 fixed prompts,
or held-out perplexity (chatterbot-corpus conversations, teacher-forced) within 2%.
LMOPS_HOME decides where the cache is (default ./.lmops): the first run converts the GGUF.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from transformers import __version__ as transformers_version
from transformers.generation.streamers import BaseStreamer

from engine import model_cache
from engine.causal_lm import FastLlama, load_causal_lm, materialize
from engine.dialogue import ChatParams, ChatReply, chat
from engine.registry import ModelRegistry
from engine.settings import get_settings

SPEED_PROMPT = "Explain what a neural network is."
PROMPTS = [
    "What is the capital of France?", "Write a haiku about the sea.", "How do I reset my password?",
    "Give me three tips for a job interview.", "Explain what a neural network is.",
    "What's a good name for a cat?", "Summarise the plot of Romeo and Juliet.",
    "How many legs does a spider have?", "Translate 'good morning' to Spanish.", "Why is the sky blue?",
]
LOAD_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from engine.causal_lm import load_causal_lm
from engine.registry import ModelRegistry
from engine.settings import get_settings
import transformers.models.llama.modeling_llama  # transformers imports model code lazily
from transformers import AutoModelForCausalLM, AutoTokenizer
t1 = time.perf_counter()
s = get_settings()
load_causal_lm(ModelRegistry(s.models_dir).resolve("smollm2"), device="cpu", cache_dir=s.cache_dir, fast=True)
print(json.dumps({"import": t1 - t0, "load": time.perf_counter() - t1}))
"""


class FirstToken(BaseStreamer):
    """Records when generate() hands over its first new token."""

    def __init__(self) -> None:
        self.calls, self.first = 0, None

    def put(self, value) -> None:
        self.calls += 1
        if self.calls == 2:
            self.first = time.perf_counter()

    def end(self) -> None:
        pass


def plain_generate(model, ids: list[int], n: int, *, force: bool) -> tuple[list[int], float, float]:
    """Greedy fp32 `model.generate`: (new ids, seconds, seconds to the first token)."""
    streamer = FirstToken()
    start = time.perf_counter()
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=n, min_new_tokens=n if force else 0, do_sample=False,
                         streamer=streamer)
    return out[0, len(ids):].tolist(), time.perf_counter() - start, streamer.first - start


def fast_greedy(decoder: FastLlama, ids: list[int], n: int, eos: int | None
                ) -> tuple[list[int], float, float]:
    start = time.perf_counter()
    session = decoder.session(len(ids) + n)
    logits, out, first = session.feed(ids), [], 0.0
    while len(out) < n:
        token = int(logits.argmax())
        first = first or time.perf_counter() - start
        if token == eos:
            break
        out.append(token)
        if len(out) < n:
            logits = session.feed([token])
    return out, time.perf_counter() - start, first


def engine_chat(message: str, n: int, settings) -> ChatReply:
    """`first_token_seconds` counts from the call: checks, template, tokenizing, prefill."""
    return chat(message, ChatParams(max_new_tokens=n, device="cpu"), settings=settings)


def held_out_conversations(n: int) -> list[list[dict[str, str]]]:
    spec = importlib.util.find_spec("chatterbot_corpus")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "english"
    pairs = []
    for path in sorted(glob.glob(str(folder / "*.yml"))):
        for c in yaml.safe_load(Path(path).read_text(encoding="utf-8"))["conversations"]:
            if len(c) >= 2 and all(isinstance(t, str) and t.strip() for t in c[:2]):
                pairs.append(c[:2])
    step = max(1, len(pairs) // n)
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            for q, a in pairs[::step][:n]]


@torch.inference_mode()
def perplexity(score, texts: list[list[int]]) -> float:
    """exp(mean next-token cross-entropy); `score(ids)` gives the logits of every position."""
    nll, count = 0.0, 0
    for ids in texts:
        logits = score(ids)
        nll += torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="sum").item()
        count += len(ids) - 1
    return math.exp(nll / count)


def load_times() -> tuple[float, float]:
    """Median of 3 fresh processes: (imports, load_causal_lm) seconds, the cache being full."""
    runs = [json.loads(subprocess.run([sys.executable, "-c", LOAD_SCRIPT], check=True, text=True,
                                      capture_output=True).stdout) for _ in range(3)]
    return statistics.median(r["import"] for r in runs), statistics.median(r["load"] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ppl-texts", type=int, default=30)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = get_settings()
    spec = ModelRegistry(settings.models_dir).resolve("smollm2")
    say(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), transformers "
        f"{transformers_version}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
        f"load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    model, tokenizer = load_causal_lm(spec, device="cpu", cache_dir=settings.cache_dir, fast=True)
    say(f"first load in this process: {time.perf_counter() - started:.1f} s (with the one-time GGUF "
        "conversion and int4 packing when the cache is empty)")
    model_cache.evict(lambda key: key[:2] == ("causal_lm", spec.path))
    started = time.perf_counter()
    model, tokenizer = load_causal_lm(spec, device="cpu", cache_dir=settings.cache_dir, fast=True)
    say(f"load again in this process (cache copy, packed int4 file): {time.perf_counter() - started:.2f} s")
    imports, load = load_times()
    say(f"load from the cache in a fresh process (median of 3): imports of torch, transformers and "
        f"the Llama code {imports:.2f} s, then load_causal_lm {load:.2f} s")

    folder = materialize(spec, cache_dir=settings.cache_dir)
    decoders = {"FastLlama fp32 (nothing packed)": FastLlama.build(model, ()),
                "FastLlama MLP int4 (engine default)": FastLlama.build(model, ("mlp",), folder),
                "FastLlama MLP+attention int4": FastLlama.build(model, ("mlp", "attn"))}
    eos = tokenizer.eos_token_id
    render = lambda p: tokenizer.apply_chat_template(
        [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
    speed_ids, n = encode(render(SPEED_PROMPT)), args.tokens

    engine_chat(SPEED_PROMPT, 4, settings)  # warm-up
    plain_generate(model, speed_ids, 4, force=True)
    runs: dict[str, list[tuple[float, float]]] = {PLAIN: [], ENGINE: [], **{k: [] for k in decoders}}
    for repeat in range(args.repeats):
        ids, seconds, first = plain_generate(model, speed_ids, n, force=True)
        runs[PLAIN].append((len(ids) / seconds, first))
        reply = engine_chat(SPEED_PROMPT, n, settings)
        runs[ENGINE].append((reply.tokens / reply.seconds, reply.first_token_seconds))
        for name, decoder in decoders.items():
            ids, seconds, first = fast_greedy(decoder, speed_ids, n, None)
            runs[name].append((len(ids) / seconds, first))
        say(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f}" for k, v in runs.items())
            + f" tokens/s (engine.chat: {reply.tokens} tokens)")

    references = [plain_generate(model, encode(render(p)), 32, force=False)[0] for p in PROMPTS]
    references = [r[: r.index(eos)] if eos in r else r for r in references]
    same = {PLAIN: len(PROMPTS), ENGINE: sum(
        engine_chat(p, 32, settings).reply == tokenizer.decode(r, skip_special_tokens=True).strip()
        for p, r in zip(PROMPTS, references))}
    for name, decoder in decoders.items():
        same[name] = sum(fast_greedy(decoder, encode(render(p)), 32, eos)[0] == r
                         for p, r in zip(PROMPTS, references))
    say("identical first 32 greedy tokens: " + ", ".join(f"{k} {v}/10" for k, v in same.items()))

    texts = [encode(tokenizer.apply_chat_template(c, tokenize=False))
             for c in held_out_conversations(args.ppl_texts)]
    ppl = {PLAIN: perplexity(lambda ids: model(torch.tensor([ids])).logits[0], texts)}
    for name, d in decoders.items():
        ppl[name] = perplexity(lambda ids, d=d: d.forward(d.session(len(ids)), ids, all_logits=True,
                                                          packed=True), texts)
    ppl[ENGINE] = ppl["FastLlama MLP int4 (engine default)"]

    base = statistics.median(r[0] for r in runs[PLAIN])
    say(f"\n{n} new tokens after a {len(speed_ids)}-token prompt, median of {args.repeats} "
        f"interleaved repeats; quality: {len(PROMPTS)} prompts x 32 greedy tokens, perplexity of "
        f"{len(texts)} held-out chatterbot-corpus conversations ({sum(map(len, texts))} tokens); "
        f"load average now {os.getloadavg()[0]:.1f}. 'best' is each path's fastest repeat (the least "
        "disturbed by other processes)\n")
    best_base = max(r[0] for r in runs[PLAIN])
    say("| path | tokens/s median (best) | x plain median (best) | first token s median (best) "
        "| identical 32 | perplexity | quality rule |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, results in runs.items():
        rate, best = statistics.median(r[0] for r in results), max(r[0] for r in results)
        first = statistics.median(r[1] for r in results)
        change = ppl[name] / ppl[PLAIN] - 1
        verdict = "pass" if same[name] >= 9 or abs(change) <= 0.02 else "FAIL"
        say(f"| {name} | {rate:.1f} ({best:.1f}) | {rate / base:.2f} ({best / best_base:.2f}) "
            f"| {first:.3f} ({min(r[1] for r in results):.3f}) | {same[name]}/{len(PROMPTS)} "
            f"| {ppl[name]:.3f} ({change:+.2%}) | {verdict} |")
    say("\nint4-packed weights: " + ", ".join(f"{k}: {d.packed_weights}" for k, d in decoders.items()))


def say(line: str) -> None:
    print(line, flush=True)


PLAIN, ENGINE = "plain fp32 greedy generate", "engine.chat (default path)"

if __name__ == "__main__":
    main()
