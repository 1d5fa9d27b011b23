"""The train worker's main process imports the training stack before its pool forks; other workers do not."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from training import signals


def _worker(*queues: str) -> SimpleNamespace:
    return SimpleNamespace(
        app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=dict.fromkeys(queues))))
    )


@pytest.mark.parametrize(
    ("queues", "preloads"), [(("train",), True), (("default", "cpu"), False), (("gpu.0", "gpu"), False)]
)
def test_only_the_train_worker_preloads(monkeypatch, queues, preloads):
    calls = []
    monkeypatch.setattr(signals, "preload_training_stack", lambda: calls.append(1) or 0.1)
    monkeypatch.delenv("SWARM_WORKER_ROLE", raising=False)
    signals.preload_in_train_worker(sender="w@h", instance=_worker(*queues))
    assert bool(calls) is preloads


def test_the_preload_imports_what_a_job_needs():
    import sys

    from inference.registry import active_model
    from training.gguf_lora import _read_base, read_base

    _read_base.cache_clear()
    signals.preload_training_stack()
    assert {"torch", "transformers", "peft", "gguf", "training.trainer"} <= set(sys.modules)
    if active_model().local_path().is_file():  # the base's layout is read once, before any job forks
        assert _read_base.cache_info().currsize == 1
        read_base(active_model().local_path())
        assert _read_base.cache_info().hits == 1


def test_a_missing_training_stack_is_logged_not_fatal(monkeypatch, caplog):
    def broken() -> float:
        raise ImportError("No module named 'peft'")

    monkeypatch.setattr(signals, "preload_training_stack", broken)
    with caplog.at_level(logging.WARNING, logger="training.signals"):
        signals.preload_in_train_worker(sender="w@h", instance=_worker("train"))
    assert "not importable" in caplog.text
