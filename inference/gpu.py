"""GPU facts and the VRAM guard, read with nvidia-smi (absent on CPU-only machines)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

GIB = 1024**3


class VramGuardError(RuntimeError):
    """Loading the model would push VRAM use past SWARM_VRAM_LIMIT_GB."""


@dataclass(frozen=True)
class GpuMemory:
    index: int
    used_bytes: int
    total_bytes: int


def visible_gpus() -> list[GpuMemory]:
    """Memory of the GPUs this process may use; empty without nvidia-smi or a GPU."""
    if not shutil.which("nvidia-smi"):
        return []
    cmd = ["nvidia-smi", "--query-gpu=index,memory.used,memory.total", "--format=csv,noheader,nounits"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        cmd.append(f"--id={visible}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        index, used, total = (part.strip() for part in line.split(","))
        gpus.append(GpuMemory(int(index), int(used) * 1024**2, int(total) * 1024**2))
    return gpus


def check_vram(*, needed_bytes: int, limit_gb: float, gpus: list[GpuMemory] | None = None) -> None:
    """Refuse a load that would take VRAM use past `limit_gb` on any visible GPU."""
    for gpu in visible_gpus() if gpus is None else gpus:
        after = gpu.used_bytes + needed_bytes
        if after > limit_gb * GIB:
            raise VramGuardError(
                f"refusing to load: GPU {gpu.index} would use {after / GIB:.2f} GiB "
                f"({gpu.used_bytes / GIB:.2f} GiB in use + {needed_bytes / GIB:.2f} GiB model), "
                f"over SWARM_VRAM_LIMIT_GB={limit_gb}"
            )
