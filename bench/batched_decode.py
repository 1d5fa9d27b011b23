#!/usr/bin/env python3
"""Would batching several chats into one llama.cpp decode raise the model's throughput here?

Usage: python -m bench.batched_decode [--model ALIAS] [--threads 1] [--sequences 1,2,4,8] [--max-tokens 32]

Greedy replies to the same short chat prompts (the soak's kind), two ways, on the registry's verified
GGUF in this process:
- `sequential`: one after another with llama-cpp-python's Llama, as a serving process does today, the
  cache reset between them, and again keeping the system prompt's keys and values (`prefix_reused`, what
  a serving process does between chats);
- `batched`: all in one llama.cpp context with one sequence each (n_seq_max), the prompts prefilled in
  one batch and then one llama_decode per step for every unfinished sequence.
Both decode the same tokens (greedy), so the report compares the time for the same work: tokens per
second each way and `batched_over_sequential`. On a CPU a decode step's cost grows with the sequences
in it (compute-bound); on a GPU it barely does. Writes reports/batched_decode_<date>.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

PROMPTS = ["hi", "hello", "good morning", "how are you?", "who are you?", "what's up?", "hey there",
           "nice to meet you"]  # fmt: skip
SYSTEM = "You are Swarm, a concise and helpful assistant. Answer in a few sentences."


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")
    import django

    django.setup()


def sequential(llm: Any, prompts: list[list[int]], max_tokens: int, *, reuse: bool) -> tuple[float, list[int]]:
    """(seconds, tokens generated per prompt): one Llama generation after another; with `reuse`, the
    keys and values of the prefix a prompt shares with the one before (the system prompt) are kept, as in
    a serving process, else the cache is reset between them."""
    counts = []
    llm.reset()
    started = time.perf_counter()
    for tokens in prompts:
        if not reuse:
            llm.reset()
        out = llm.create_completion(prompt=tokens, max_tokens=max_tokens, temperature=0.0)
        counts.append(int(out["usage"]["completion_tokens"]))
    return time.perf_counter() - started, counts


def batched(llm: Any, prompts: list[list[int]], max_tokens: int) -> tuple[float, list[int]]:
    """(seconds, tokens generated per prompt): every prompt a sequence of one context, decoded together
    (on the threads the Llama's own context uses, for decoding and for the prompts)."""
    import llama_cpp
    import numpy as np

    n = len(prompts)
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n * (max(len(p) for p in prompts) + max_tokens + 8)
    params.n_batch = max(512, sum(len(p) for p in prompts))
    params.n_seq_max = n
    params.n_threads, params.n_threads_batch = llm.context_params.n_threads, llm.context_params.n_threads_batch
    ctx = llama_cpp.llama_init_from_model(llm.model, params)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    batch = llama_cpp.llama_batch_init(params.n_batch, 0, n)

    def add(token: int, pos: int, seq: int, *, logits: bool = True) -> int:
        i = batch.n_tokens
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, logits
        batch.seq_id[i][0] = seq
        batch.n_tokens += 1
        return i

    try:
        started = time.perf_counter()
        batch.n_tokens = 0
        last, pos = [0] * n, [len(p) for p in prompts]
        for seq, tokens in enumerate(prompts):
            for at, token in enumerate(tokens):
                last[seq] = add(token, at, seq, logits=at == len(tokens) - 1)
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed on the prompts")
        counts, live = [0] * n, set(range(n))
        while live:
            chosen = {}
            for seq in sorted(live):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, last[seq]), shape=(n_vocab,))
                token = int(logits.argmax())
                if llama_cpp.llama_vocab_is_eog(vocab, token) or counts[seq] >= max_tokens:
                    live.discard(seq)
                    continue
                counts[seq] += 1
                chosen[seq] = token
            if not chosen or all(counts[s] >= max_tokens for s in chosen):
                break
            batch.n_tokens = 0
            for seq, token in chosen.items():
                last[seq] = add(token, pos[seq], seq)
                pos[seq] += 1
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
        return time.perf_counter() - started, counts
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="registry alias (default: SWARM_MODEL or the registry's default)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sequences", default="1,2,4,8")
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args(argv)
    _setup()
    from dataclasses import replace

    from bench.reporting import write_report
    from inference.backends.llama import LlamaCppBackend
    from inference.registry import active_model, load_registry

    spec = load_registry().get(args.model) if args.model else active_model()
    # The serving backend's own load (hash, size and GGUF identity checked), on `--threads` threads.
    backend = LlamaCppBackend(replace(spec, params={**spec.params, "threads": args.threads}))
    backend.load()
    llm = backend._llm
    rows = []
    for n in (int(s) for s in args.sequences.split(",")):
        prompts = [backend.prompt_tokens([{"role": "system", "content": SYSTEM},
                                          {"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])
                   for i in range(n)]  # fmt: skip
        sequential(llm, prompts[:1], 4, reuse=False)  # warm
        seq_s, seq_counts = sequential(llm, prompts, args.max_tokens, reuse=False)
        reuse_s, reuse_counts = sequential(llm, prompts, args.max_tokens, reuse=True)
        bat_s, bat_counts = batched(llm, prompts, args.max_tokens)
        seq_rate, reuse_rate = sum(seq_counts) / seq_s, sum(reuse_counts) / reuse_s
        bat_rate = sum(bat_counts) / bat_s
        rows.append({"sequences": n, "sequential_s": round(seq_s, 3), "sequential_prefix_reused_s": round(reuse_s, 3),
                     "batched_s": round(bat_s, 3), "tokens_sequential": sum(seq_counts),
                     "tokens_sequential_prefix_reused": sum(reuse_counts), "tokens_batched": sum(bat_counts),
                     "tokens_per_s_sequential": round(seq_rate, 1),
                     "tokens_per_s_sequential_prefix_reused": round(reuse_rate, 1),
                     "tokens_per_s_batched": round(bat_rate, 1),
                     "batched_over_sequential": round(bat_rate / seq_rate, 3),
                     "batched_over_sequential_prefix_reused": round(bat_rate / reuse_rate, 3)})  # fmt: skip
        print(rows[-1], flush=True)
    write_report("batched_decode", {
        "model": spec.alias, "device": backend.device, "threads": args.threads,
        "cpus": os.cpu_count(), "machine": platform.machine(), "max_tokens": args.max_tokens,
        "method": __doc__.split("\n\n")[2].replace("\n", " "), "results": rows,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
