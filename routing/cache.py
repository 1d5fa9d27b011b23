"""Exact answer cache in Redis: `cache:<sha256>` over the normalized prompt and everything that shapes the answer."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

from django.conf import settings

from swarm_site.redis_client import get_redis


def normalize_prompt(prompt: str) -> str:
    """Case, Unicode form and whitespace do not change the question."""
    return " ".join(unicodedata.normalize("NFKC", prompt).split()).casefold()


def cache_key(
    *,
    prompt: str,
    model: str,
    adapter_version: str,
    max_tokens: int,
    temperature: float,
    form: dict[str, Any] | None = None,
) -> str:
    """`form`: the generation options that shape the answer (response format, tools, sampling), if any."""
    fields: dict[str, Any] = {
        "p": normalize_prompt(prompt),
        "m": model,
        "a": adapter_version,
        "max_tokens": max_tokens,
        "t": round(float(temperature), 4),
    }
    if form:
        fields["f"] = form
    material = json.dumps(
        fields,
        sort_keys=True,
        separators=(",", ":"),
    )
    return "cache:" + hashlib.sha256(material.encode()).hexdigest()


def cache_get(key: str) -> dict[str, Any] | None:
    return cached_answer(get_redis().get(key))


def cached_answer(raw: bytes | str | None) -> dict[str, Any] | None:
    """A cache entry's stored value, parsed (None: no entry)."""
    return json.loads(raw) if raw else None


def cache_put(key: str, value: dict[str, Any], *, ttl_s: int | None = None, client: Any = None) -> None:
    """Store an answer (`client`: a pipeline to queue the write on; by default the API's Redis, at once)."""
    (client or get_redis()).set(key, json.dumps(value), ex=ttl_s or settings.SWARM_CACHE_TTL_S)
