"""A request whose adapter cannot be loaded is answered by the base model, says so, and is not cached
under the adapter's key (the real model in this process; real Redis DB 8)."""

from __future__ import annotations

import json

import pytest

from routing import services
from routing.cache import cache_get
from training.serving import BASE, Arm

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _env(training_redis):
    return training_redis


@pytest.fixture(autouse=True, scope="module")
def _unload_worker_model():
    """council_answer loads this process's worker model; free it before the interpreter exits."""
    from inference import runtime

    yield
    if runtime.current_backend() is not None:
        runtime.current_backend().unload()
        runtime._backend = None


def test_a_corrupt_adapter_falls_back_to_the_base_model(settings):
    folder = settings.SWARM_ADAPTER_DIR / "lora-v9"
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(b"not a gguf file")
    adapter = {"version": "lora-v9", "path": "lora-v9/adapter.gguf", "sha256": "0" * 64}
    backend, served = services._serving_backend(adapter)
    assert served == BASE and backend.active_adapter is None
    answer = services.council_answer(prompt="What is 7*8?", max_tokens=8, temperature=0.0, request_id="fallback-1",
                                     adapter=adapter)  # fmt: skip
    assert answer["adapter_version"] == BASE and answer["answer"] == "56"


def logged() -> list[dict]:
    """The interactions appended to the log stream (the cache entry rides with the append)."""
    from routing.interaction_log import DATA_FIELD, STREAM_KEY
    from swarm_site.redis_client import get_redis

    return [json.loads(fields[DATA_FIELD]) for _, fields in get_redis().xrange(STREAM_KEY)]


def test_an_answer_from_another_adapter_than_the_key_names_is_not_cached():
    ask = services.Ask(prompt="What is 6*7?", max_tokens=8, temperature=0.0)
    ask.arm = Arm(version="lora-v9", path="lora-v9/adapter.gguf", sha256="0" * 64)
    key, adapter, _ = "cache:test-fallback", "lora-v9", None
    fell_back = {"answer": "42", "route": "council", "skill_type": "math", "confidence": 1.0, "adapter_version": BASE}
    result = services._finish(ask, dict(fell_back), key=key, adapter=adapter, cached=False)
    assert result["adapter_version"] == BASE and cache_get(key) is None
    assert logged()[-1]["adapter_version"] == BASE
    served = services._finish(ask, {**fell_back, "adapter_version": "lora-v9"}, key=key, adapter=adapter, cached=False)
    assert served["adapter_version"] == "lora-v9" and cache_get(key)["answer"] == "42"
