"""Which adapter answers a request: the serving state mirrored into Redis, and the canary split.

The database row (`ServingState`) is the truth; every change is published after commit as one JSON
value under `swarm:adapter:serving`, which the API reads once per request (one Redis GET):

    {"generation": 7, "stable": {"version": "lora-v3", "path": "lora-v3/adapter.gguf", "sha256": "..."},
     "canary": {"version": "lora-v4", ...} | null, "weight": 5}

`choose_arm(snapshot, client)` picks the stable or the canary arm. The split is sticky: a client
(API key, OpenAI `user`, or address) hashes into one of 10,000 buckets per canary version, and the
first `weight` % of buckets get the canary, so a client keeps its arm for the canary's life and
each canary samples a different slice of clients. The chosen arm travels with the task to the
serving worker (which loads that adapter, verified by SHA-256) and is part of the cache key, so
an answer is cached under the adapter that produced it and no stale answer survives a swap.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from swarm_site.redis_client import get_redis

log = logging.getLogger(__name__)

SERVING_KEY = "swarm:adapter:serving"
BASE = "base"
BUCKETS = 10_000


@dataclass(frozen=True)
class Arm:
    """One adapter a request can be served with; `version == "base"` means no adapter."""

    version: str = BASE
    path: str | None = None  # relative to SWARM_ADAPTER_DIR
    sha256: str | None = None
    canary: bool = False

    @property
    def is_base(self) -> bool:
        return self.version == BASE

    @property
    def name(self) -> str:
        """The arm's label in metrics: stable or canary."""
        return "canary" if self.canary else "stable"

    def as_task(self) -> dict[str, Any] | None:
        """What the serving worker needs to load it (None for the base model)."""
        if self.is_base:
            return None
        return {"version": self.version, "path": self.path, "sha256": self.sha256}


BASE_ARM = Arm()


@dataclass(frozen=True)
class Snapshot:
    generation: int = 0
    stable: Arm = BASE_ARM
    canary: Arm | None = None
    weight: int = 0

    def as_json(self) -> str:
        body = {
            "generation": self.generation,
            "stable": None if self.stable.is_base else _arm_dict(self.stable),
            "canary": _arm_dict(self.canary) if self.canary else None,
            "weight": self.weight,
        }
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> Snapshot:
        if not raw:
            return cls()
        body = json.loads(raw)
        stable = body.get("stable")
        canary = body.get("canary")
        return cls(
            generation=int(body.get("generation", 0)),
            stable=Arm(**stable) if stable else BASE_ARM,
            canary=Arm(**canary, canary=True) if canary else None,
            weight=int(body.get("weight", 0)),
        )


def _arm_dict(arm: Arm) -> dict[str, Any]:
    body = asdict(arm)
    body.pop("canary")
    return body


def adapter_dir() -> Path:
    return Path(settings.SWARM_ADAPTER_DIR)


_seen_generation: int | None = None


def adapter_ref(adapter: dict[str, Any] | None):
    """The backend's AdapterRef for an arm's task form (`Arm.as_task()`), None for the base model.

    The file is this host's copy under SWARM_ADAPTER_DIR, fetched from the adapter store (the
    database) first when it is missing or is not the one asked for (training/adapter_store.py);
    raises when neither has it."""
    from inference.backends.base import AdapterRef
    from training.adapter_store import local_adapter

    if not adapter:
        return None
    path = local_adapter(adapter["version"], adapter["path"], adapter["sha256"])
    return AdapterRef(version=adapter["version"], path=path, sha256=adapter["sha256"])


def read_snapshot() -> Snapshot:
    """The serving state as the API sees it now (one Redis GET; raises Redis errors)."""
    return _seen(get_redis().get(SERVING_KEY))


# The snapshot this process read last, (raw, parsed): the guess `read_snapshot_with` starts from.
_last: tuple[str | bytes | None, Snapshot] = (None, Snapshot())


def _seen(raw: str | bytes | None) -> Snapshot:
    """`raw` parsed (once per change). A process that sees a new generation (at start, or after another
    process published) exports it, so swarm_lora_version is right even after a restart that wiped the
    metrics directory."""
    global _seen_generation, _last
    last_raw, last = _last
    snapshot = last if raw == last_raw else Snapshot.from_json(raw)
    _last = (raw, snapshot)
    if snapshot.generation != _seen_generation:
        _seen_generation = snapshot.generation
        _export(snapshot)
    return snapshot


def read_snapshot_with(key_for: Callable[[Snapshot], str | None]) -> tuple[Snapshot, str | None, str | None]:
    """The serving state now, the key `key_for` derives from it, and that key's value: in one Redis
    round trip when the state is the one this process saw last (the key is derived from that guess
    and read in the same pipeline), in two when it changed since (the key is derived again)."""
    guess = _last[1]
    key = key_for(guess)
    pipe = get_redis().pipeline(transaction=False)
    pipe.get(SERVING_KEY)
    if key is not None:
        pipe.get(key)
    raw, *value = pipe.execute()
    snapshot = _seen(raw)
    if snapshot != guess:
        key = key_for(snapshot)
        value = [get_redis().get(key)] if key is not None else []
    return snapshot, key, value[0] if value else None


def write_snapshot(snapshot: Snapshot) -> None:
    get_redis().set(SERVING_KEY, snapshot.as_json())
    _export(snapshot)


def _export(snapshot: Snapshot) -> None:
    """swarm_lora_version and swarm_lora_canary_weight as `snapshot` has them."""
    from observability import metrics

    metrics.set_lora_version(snapshot.generation)
    metrics.set_canary_weight(snapshot.weight if snapshot.canary else 0)


def bucket(client: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}\x00{client}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose_arm(snapshot: Snapshot, client: str | None) -> Arm:
    """The stable arm, or the canary for `weight` % of clients (sticky per client and canary)."""
    if snapshot.canary is None or snapshot.weight <= 0 or not client:
        return snapshot.stable
    if bucket(client, snapshot.canary.version) < snapshot.weight * BUCKETS // 100:
        return snapshot.canary
    return snapshot.stable
