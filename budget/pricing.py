"""Worst-case cost: an upper bound on the tokens a call can be billed for, priced before the call."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

# Chat framing a provider may add per message (role markers, separators) and per request.
PER_MESSAGE_OVERHEAD = 8
PER_REQUEST_OVERHEAD = 8


def prompt_token_bound(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """No tokenizer in use (byte-level BPE, SentencePiece with byte fallback) emits more than one
    token per UTF-8 byte, so bytes + framing bounds the prompt tokens of any provider. Tool
    definitions and an assistant's earlier tool calls are read by the provider too: their JSON counts."""

    def size(message: dict[str, Any]) -> int:
        extra = {k: v for k, v in message.items() if k in ("tool_calls", "tool_call_id")}
        return len((message.get("content") or "").encode()) + (len(json.dumps(extra).encode()) if extra else 0)

    tool_bytes = len(json.dumps(tools).encode()) if tools else 0
    return PER_REQUEST_OVERHEAD + tool_bytes + sum(size(m) + PER_MESSAGE_OVERHEAD for m in messages)


def worst_case_cost(provider, messages: list[dict[str, str]], max_tokens: int) -> Decimal:
    return provider.cost(prompt_token_bound(messages), max_tokens)
