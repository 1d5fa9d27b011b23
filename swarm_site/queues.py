"""Celery queues, split by workload so workers scale without code changes."""

from __future__ import annotations

from enum import StrEnum


class CeleryQueue(StrEnum):
    GPU = "gpu"  # any GPU (or CPU-model) worker
    CPU = "cpu"  # embeddings, mining, light jobs
    TRAIN = "train"  # LoRA training, holds the GPU swap lock
    DEFAULT = "default"  # bookkeeping: interaction log, housekeeping

    @staticmethod
    def gpu(index: int) -> str:
        """The queue pinned to one device: `gpu.<index>`."""
        if index < 0:
            raise ValueError("GPU index must be >= 0")
        return f"gpu.{index}"
