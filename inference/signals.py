"""Worker hooks: a serving worker loads its model once per process, then starts its heartbeat."""

from __future__ import annotations

import logging
import os

from celery.signals import worker_process_init

log = logging.getLogger(__name__)


@worker_process_init.connect
def load_model_in_worker(**_: object) -> None:
    if os.environ.get("SWARM_WORKER_ROLE") != "gpu":
        return
    from inference.runtime import get_backend, start_heartbeat

    backend = get_backend()  # IntegrityError / VramGuardError stop the process with the reason logged
    backend.generate([{"role": "user", "content": "hi"}], max_tokens=1, temperature=0.0)  # warm the graph
    start_heartbeat()
