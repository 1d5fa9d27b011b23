"""A greedy generation reads its prompt from an empty KV cache: its text and token probabilities are the
same whatever request the backend served before (the trust rules compare them to fitted thresholds)."""

from __future__ import annotations

import pytest

from inference.backends.llama import LlamaCppBackend, message_cuts
from inference.registry import load_registry

SYSTEM = {"role": "system", "content": "You are Swarm, a concise and helpful assistant. Answer in a few sentences."}
QUESTION = [SYSTEM, {"role": "user", "content": "Which playwright wrote Hamlet?"}]
# Reusing a cached prefix that ends inside the question left the last few prompt tokens to a small batch,
# and llama.cpp's small-batch kernels round differently: after the third, Qwen's least token probability
# for "Hamlet was written by William Shakespeare." was 0.6285 instead of 0.6460.
BEFORE = [
    [SYSTEM, {"role": "user", "content": "hi"}],
    [SYSTEM, {"role": "user", "content": "Who painted the Mona Lisa?"}],
    [SYSTEM, {"role": "user", "content": "Which playwright wrote Macbeth?"}],
]


@pytest.fixture(scope="module")
def backend():
    backend = LlamaCppBackend(load_registry().get("qwen2.5-coder-0.5b"))
    backend.load()
    yield backend
    backend.unload()


def greedy(backend: LlamaCppBackend, messages: list[dict[str, str]]) -> tuple[str, float | None, float | None]:
    out = backend.generate(messages, max_tokens=64, temperature=0.0)
    return out.text, out.token_confidence, out.min_token_prob


def test_the_request_before_does_not_move_a_greedy_answer_or_its_probabilities(backend):
    alone = greedy(backend, QUESTION)
    assert alone[2] is not None
    for before in BEFORE:
        backend.generate(before, max_tokens=16, temperature=0.0)
        assert greedy(backend, QUESTION) == alone  # exactly: not a digit moves


def prompt_reads(backend: LlamaCppBackend, messages, **sampling) -> int:
    """How many prompt tokens one generation evaluates (the decoded tokens after the first are not counted)."""
    llm = backend._llm
    evaluated: list[int] = []
    original = llm.eval
    llm.eval = lambda tokens: (evaluated.extend(tokens), original(tokens))[1]
    try:
        out = backend.generate(messages, max_tokens=4, **sampling)
    finally:
        del llm.eval
    return len(evaluated) - (out.completion_tokens - 1)


def test_a_greedy_request_reuses_the_system_message_and_reads_the_rest_again(backend):
    tokens = backend.prompt_tokens(QUESTION)
    llm = backend._llm
    starts = [i for i, t in enumerate(tokens) if llm.detokenize([t], special=True) == b"<|im_start|>"]
    prompt, system = len(tokens), starts[1]  # the user's message starts after the system message's tokens
    backend.generate(QUESTION, max_tokens=4, temperature=0.0)
    assert prompt_reads(backend, QUESTION, temperature=0.0) == prompt - system  # all of it was cached
    # A sampled request takes llama-cpp-python's own reuse: it reads the last prompt token only.
    assert prompt_reads(backend, QUESTION, temperature=1.0, top_k=1) == 1


def test_cuts_fall_before_each_message_but_the_last_and_need_the_template_markers(backend):
    llm = backend._llm
    turns = [SYSTEM, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "Which playwright wrote Hamlet?"}]  # fmt: skip
    tokens = backend.prompt_tokens(turns)
    cuts = message_cuts(tokens, backend._is_control, llm.token_bos())
    assert len(cuts) == 3  # before the first user turn, the assistant's turn and the last user turn
    assert all(llm.detokenize([tokens[c]], special=True) == b"<|im_start|>" for c in cuts)
    assert (
        message_cuts(backend.text_tokens("Which playwright wrote Hamlet?"), backend._is_control, llm.token_bos()) == []
    )
