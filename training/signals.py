"""Worker hooks: the train worker imports the training stack once, in its main process.

The train worker runs each job in a fresh child (`--max-tasks-per-child 1`: a finished run hands
its memory back). A child forked from a parent that has already imported torch, transformers, PEFT
and gguf starts training at once instead of spending ~7 s on imports per job. Importing does not
start threads (torch's pools start on first use), so forking after it is safe.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from typing import Any

from celery.signals import celeryd_after_setup

log = logging.getLogger(__name__)

# Everything a training job imports that takes time (training.hf pulls in torch and transformers).
PRELOAD = ("training.hf", "training.trainer", "training.gguf_lora", "training.evaluation", "peft")


def preload_training_stack() -> float:
    """Import the training stack now, and read the base GGUF's layout the export needs (cached per file
    version: ~4 s of parsing its vocabulary, done once here instead of in every job); the seconds it took."""
    started = time.perf_counter()
    for name in PRELOAD:
        importlib.import_module(name)
    from inference.registry import RegistryError, active_model
    from training.gguf_lora import read_base

    try:
        read_base(active_model().local_path())
    except (RegistryError, OSError, ValueError) as exc:  # no model yet: the job reads it (and says why)
        log.info("train worker: base GGUF not read ahead (%s)", exc)
    return time.perf_counter() - started


@celeryd_after_setup.connect
def preload_in_train_worker(sender: Any = None, instance: Any = None, **_: Any) -> None:
    """Celery `celeryd_after_setup`: the worker's main process, after `-Q` is applied, before the pool forks."""
    from observability.startups import WORKER_TRAIN, worker_service

    try:
        queues = list(instance.app.amqp.queues.consume_from)
    except AttributeError:
        return
    if worker_service(queues, os.environ.get("SWARM_WORKER_ROLE")) != WORKER_TRAIN:
        return
    try:
        seconds = preload_training_stack()
    except ImportError as exc:  # requirements/ml.txt missing: each job reports it when it runs
        log.warning("train worker: training stack not importable (%s); jobs will fail with the reason", exc)
        return
    log.info("train worker: training stack imported in %.1f s (each job's process starts with it)", seconds)
