"""A serving worker on "another host": its SWARM_ADAPTER_DIR is an empty folder, not the trainer's. The
adapter the trainer recorded still serves: the worker fetches its bytes from the adapter store (the
stack's database), checks the SHA-256 and writes it into its own folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.integrity import sha256_file
from inference.registry import active_model
from tests.stack import Stack
from tests.training.adapter_factory import RECORD_ADAPTER, tiny_gguf_lora

pytestmark = pytest.mark.integration


def test_a_worker_without_the_file_serves_the_adapter_from_the_store(module_redis, tmp_path):
    trainer_dir, worker_dir = tmp_path / "trainer-adapters", tmp_path / "worker-adapters"
    worker_dir.mkdir()
    s = Stack.build(redis_url=module_redis.url, SWARM_ADAPTER_DIR=str(trainer_dir))
    base = active_model().local_path(Path(s.env["SWARM_MODEL_DIR"]))
    sha256 = tiny_gguf_lora(base, trainer_dir / "lora-v1" / "adapter.gguf")
    try:
        s.migrate()
        s.manage("shell", "-c", RECORD_ADAPTER)
        s.start_gpu_worker(env={"SWARM_ADAPTER_DIR": str(worker_dir)})
        s.start_cpu_worker()
        s.start_web()
        s.wait_healthy(timeout=120)
        body = s.post("/orchestrate", {"prompt": "Tell me about tea.", "max_tokens": 8, "user": "anyone"}).json()
        assert body["adapter_version"] == "lora-v1", (body, s.logs())
        fetched = worker_dir / "lora-v1" / "adapter.gguf"
        assert sha256_file(fetched) == sha256
        assert [p.name for p in fetched.parent.iterdir()] == ["adapter.gguf"]  # no temporary file left
        assert "fetched adapter lora-v1 from the store" in s.logs(tail=None)
    finally:
        s.stop()
