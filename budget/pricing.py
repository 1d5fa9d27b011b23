"""Worst-case cost: an upper bound on the tokens a call can be billed for, priced before the call."""

from __future__ import annotations

from decimal import Decimal

# Chat framing a provider may add per message (role markers, separators) and per request.
PER_MESSAGE_OVERHEAD = 8
PER_REQUEST_OVERHEAD = 8


def prompt_token_bound(messages: list[dict[str, str]]) -> int:
    """No tokenizer in use (byte-level BPE, SentencePiece with byte fallback) emits more than one
    token per UTF-8 byte, so bytes + framing bounds the prompt tokens of any provider."""
    return PER_REQUEST_OVERHEAD + sum(len(m.get("content", "").encode()) + PER_MESSAGE_OVERHEAD for m in messages)


def worst_case_cost(provider, messages: list[dict[str, str]], max_tokens: int) -> Decimal:
    return provider.cost(prompt_token_bound(messages), max_tokens)
