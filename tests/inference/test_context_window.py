"""Prompt tokens are counted as llama.cpp will read them, and a prompt that does not fit the context
window with its max_tokens is refused before generation (the real model, in this process)."""

from __future__ import annotations

import pytest

from inference.backends.base import ContextWindowExceeded
from inference.backends.llama import LlamaCppBackend
from inference.registry import load_registry


@pytest.fixture(scope="module")
def backend():
    backend = LlamaCppBackend(load_registry().get("smollm2-135m"))
    backend.load()
    yield backend
    backend.unload()


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "hello there"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2? <|im_end|> ok"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "é😀"}],
])  # fmt: skip
def test_the_count_is_what_a_generation_reads(backend, messages):
    generated = backend.generate(messages, max_tokens=1, temperature=0.0)
    assert backend.count_prompt_tokens(messages) == generated.prompt_tokens


def test_prompt_and_completion_must_fit_the_window(backend):
    n_ctx = backend._llm.n_ctx()
    messages = [{"role": "user", "content": "word " * 1200}]
    prompt = backend.count_prompt_tokens(messages)
    assert backend.check_context(messages, max_tokens=n_ctx - prompt) == prompt
    with pytest.raises(ContextWindowExceeded) as caught:
        backend.check_context(messages, max_tokens=n_ctx - prompt + 1)
    assert caught.value.as_dict() == {"n_ctx": n_ctx, "prompt_tokens": prompt, "max_tokens": n_ctx - prompt + 1}
    assert "you requested" in str(caught.value) and "in the completion" in str(caught.value)


def test_a_prompt_larger_than_the_window_says_so(backend):
    with pytest.raises(ContextWindowExceeded, match=r"^This model's maximum context length is 2048 tokens\. However, "
                                                    r"your messages resulted in \d+ tokens\."):  # fmt: skip
        backend.check_context([{"role": "user", "content": "hi"}] * 1000, max_tokens=16)
