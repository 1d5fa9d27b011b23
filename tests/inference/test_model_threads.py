"""How many CPU threads a serving process gives llama.cpp."""

from __future__ import annotations

import os

import pytest
from django.test import override_settings

from inference.backends.llama import model_threads


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})


@override_settings(SWARM_MODEL_THREADS=0, SWARM_MODEL_SLOTS=1)
def test_one_serving_process_takes_every_core_it_may_use(four_cores):
    assert model_threads(None) == 4


@override_settings(SWARM_MODEL_THREADS=0, SWARM_MODEL_SLOTS=2)
def test_serving_processes_share_the_cores(four_cores):
    assert model_threads(None) == 2


@override_settings(SWARM_MODEL_THREADS=0, SWARM_MODEL_SLOTS=8)
def test_more_processes_than_cores_still_get_one_thread_each(four_cores):
    assert model_threads(None) == 1


@override_settings(SWARM_MODEL_THREADS=0, SWARM_MODEL_SLOTS=1)
def test_the_registry_entry_sets_it(four_cores):
    assert model_threads(3) == 3


@override_settings(SWARM_MODEL_THREADS=1, SWARM_MODEL_SLOTS=1)
def test_the_environment_overrides_the_registry(four_cores):
    assert model_threads(3) == 1


@override_settings(SWARM_MODEL_THREADS=0, SWARM_MODEL_SLOTS=2)
def test_without_affinity_the_platforms_core_count_is_shared(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # not on macOS
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert model_threads(None) == 3
