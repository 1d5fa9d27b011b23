"""Celery queues, split by workload so workers scale without code changes."""

from __future__ import annotations

import re
from enum import StrEnum


class CeleryQueue(StrEnum):
    GPU = "gpu"  # any GPU (or CPU-model) worker
    CPU = "cpu"  # embeddings, mining, light jobs
    TRAIN = "train"  # LoRA training, holds the GPU swap lock
    DEFAULT = "default"  # bookkeeping: interaction log, housekeeping

    @staticmethod
    def gpu(index: int, host: str = "") -> str:
        """The queue pinned to one device: `gpu.<index>`, or `gpu.<host>.<index>` on a host that names
        itself (SWARM_NODE), so that every GPU of every host has a queue of its own."""
        if index < 0:
            raise ValueError("GPU index must be >= 0")
        if host and not _HOST.fullmatch(host):
            raise ValueError(f"host name {host!r}: letters, digits and '-' only")
        return f"gpu.{host}.{index}" if host else f"gpu.{index}"


_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
_GPU_QUEUE = re.compile(r"gpu\.(?:(?P<host>[A-Za-z0-9][A-Za-z0-9-]{0,62})\.)?(?P<index>\d+)")


def gpu_queue_parts(name: str) -> tuple[str, int] | None:
    """(host, index) of a device queue (`gpu.3` -> ("", 3), `gpu.node-b.0` -> ("node-b", 0)); None for
    any other queue name, the shared `gpu` queue included."""
    match = _GPU_QUEUE.fullmatch(name.strip())
    return (match["host"] or "", int(match["index"])) if match else None
