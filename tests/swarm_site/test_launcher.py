"""The launcher's own parts: a private Redis when none answers, the serving worker's command and environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from inference.management.commands.gpu_worker import gpu_worker_argv, gpu_worker_env
from swarm_site.queues import CeleryQueue, gpu_queue_parts
from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_ensure_redis_starts_a_loopback_redis_when_none_answers(tmp_path):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    env = {**os.environ, "REDIS_URL": url}
    try:
        first = subprocess.run([sys.executable, "scripts/ensure_redis.py"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=30)  # fmt: skip
        assert first.returncode == 0 and "started a local redis-server" in first.stdout
        assert redis.Redis.from_url(url).ping()
        assert redis.Redis.from_url(url).config_get("bind")["bind"] == "127.0.0.1"
        again = subprocess.run([sys.executable, "scripts/ensure_redis.py"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=30)  # fmt: skip
        assert again.returncode == 0 and "answers" in again.stdout
    finally:
        redis.Redis.from_url(url).shutdown(nosave=True)


def test_ensure_redis_never_starts_a_redis_for_a_sentinel_url():
    ports = [free_port(), free_port()]  # no sentinel listens there
    url = f"sentinel://127.0.0.1:{ports[0]};sentinel://127.0.0.1:{ports[1]}/0"
    env = {**os.environ, "REDIS_URL": url, "SWARM_REDIS_SENTINEL_MASTER": "swarm-x"}
    done = subprocess.run([sys.executable, "scripts/ensure_redis.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 1 and "started" not in done.stdout
    assert "name no primary 'swarm-x'" in done.stderr and "never started here" in done.stderr


def test_the_gpu_worker_is_pinned_single_and_late_acking():
    argv = gpu_worker_argv(gpu=1, loglevel="INFO", extra_queues=[])
    assert "--concurrency=1" in argv and "--prefetch-multiplier=1" in argv
    assert "--concurrency=3" in gpu_worker_argv(gpu=1, loglevel="INFO", extra_queues=[], slots=3)  # SWARM_MODEL_SLOTS
    assert argv[argv.index("-Q") + 1] == "gpu.1,gpu"
    env = gpu_worker_env(gpu=1, queues="gpu.1,gpu", base={})
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"
    assert env["SWARM_WORKER_ROLE"] == "gpu" and env["SWARM_MODEL_SLOTS"] == "1"
    assert gpu_worker_env(gpu=1, queues="q", slots=3, base={})["SWARM_MODEL_SLOTS"] == "3"  # they share the cores
    assert gpu_worker_env(gpu=0, queues="q", base={"PYTORCH_CUDA_ALLOC_CONF": "x"})["PYTORCH_CUDA_ALLOC_CONF"] == "x"


def test_a_named_node_gets_queues_and_a_worker_name_of_its_own(settings):
    settings.SWARM_NODE = "node-b"
    argv = gpu_worker_argv(gpu=2, loglevel="INFO", extra_queues=[])
    assert argv[argv.index("-Q") + 1] == "gpu.node-b.2,gpu"
    assert argv[argv.index("-n") + 1] == "gpu2@node-b"
    assert gpu_worker_env(gpu=2, queues="gpu.node-b.2,gpu", base={})["SWARM_WORKER_NAME"] == "gpu2@node-b"


def test_device_queue_names_parse_back():
    assert CeleryQueue.gpu(3) == "gpu.3" and gpu_queue_parts("gpu.3") == ("", 3)
    assert CeleryQueue.gpu(0, "node-b") == "gpu.node-b.0" and gpu_queue_parts("gpu.node-b.0") == ("node-b", 0)
    for other in ("gpu", "cpu", "gpu.", "gpu.x", "gpu.a.b.1", "gpu.-a.1"):
        assert gpu_queue_parts(other) is None, other
    with pytest.raises(ValueError):
        CeleryQueue.gpu(0, "bad.name")


def test_late_acks_and_a_visibility_timeout_above_the_deadline(settings):
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.SWARM_DEADLINE_S
