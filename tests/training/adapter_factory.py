"""AdapterVersion rows for the rollout and reload tests, with the evaluation a training run records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.models import AdapterVersion


def evaluation(score: float, threshold: float, *, total: int = 40, against: str = "base",
               wrong: float = 0.0, wrong_max: float = 0.0, eval_set: str = "heldout") -> dict[str, Any]:  # fmt: skip
    """What training/services.py records: the serving adapter's score (`current`) and the new one's."""

    def side(adapter: str, accuracy: float, wrong_rate: float) -> dict[str, Any]:
        return {"adapter": adapter, "correct": round(accuracy * total), "total": total, "accuracy": accuracy,
                "escalation_rate": 1.0, "trusted_wrong_rate": wrong_rate, "seconds": 0.1}  # fmt: skip

    return {"eval_set": eval_set, "current": side(against, threshold, wrong_max),
            "new": side("new", score, wrong), "train_examples": 1, "steps": 3}  # fmt: skip


def adapter(number: int, status: str = AdapterVersion.Status.CANDIDATE, report: dict | None = None) -> AdapterVersion:
    return AdapterVersion.objects.create(number=number, base_model="smollm2-135m", base_sha256="0" * 64,
                                         path=f"lora-v{number}/adapter.gguf", sha256=f"{number:064x}", rank=8,
                                         alpha=16, status=status, evaluation=report or {})  # fmt: skip


def rejected(number: int) -> AdapterVersion:
    """The issue's one-prompt dev_test adapter: 0.000 against the base model's 0.025 on the held-out set."""
    return adapter(number, AdapterVersion.Status.REJECTED, evaluation(0.0, 0.025))


def passed(number: int, score: float = 0.05) -> AdapterVersion:
    return adapter(number, AdapterVersion.Status.CANDIDATE, evaluation(score, 0.025))


def tiny_gguf_lora(base_path: Path, out_path: Path, *, rank: int = 4, seed: int = 0) -> str:
    """A small GGUF LoRA that llama.cpp loads on `base_path` (random A and B on block 0's attn_q, written
    as training/gguf_lora.py writes them), without torch; the file's SHA-256."""
    import gguf
    import numpy as np

    from inference.integrity import sha256_file
    from training.gguf_lora import read_base

    base = read_base(base_path)
    target = "blk.0.attn_q.weight"
    n_in, n_out = base.shapes[target]  # ggml ne order
    rng = np.random.default_rng(seed)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(out_path, base.arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    writer.add_tensor(f"{target}.lora_a", rng.normal(0, 0.05, (rank, n_in)).astype(np.float32))
    writer.add_tensor(f"{target}.lora_b", rng.normal(0, 0.05, (n_out, rank)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sha256_file(out_path)


# What the trainer does after the export: the version and its bytes in one transaction, then it serves.
RECORD_ADAPTER = """
from pathlib import Path
from django.conf import settings
from django.db import transaction
from inference.integrity import sha256_file
from inference.registry import active_model
from training import adapter_store, rollout
from training.models import AdapterVersion
path = Path(settings.SWARM_ADAPTER_DIR) / "lora-v1" / "adapter.gguf"
spec = active_model()
with transaction.atomic():
    adapter = AdapterVersion.objects.create(number=1, base_model=spec.alias, base_sha256=spec.sha256 or "",
        path="lora-v1/adapter.gguf", sha256=sha256_file(path), size=path.stat().st_size, rank=4, alpha=4.0)
    adapter_store.save_blob(adapter, path)
rollout.reload_adapter("lora-v1")
"""
