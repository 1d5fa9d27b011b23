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
    if backend.spec.trust is not None and backend.spec.trust.reference is not None:
        warm_reference_notes()
    start_heartbeat()


def warm_reference_notes() -> None:
    """Build WordNet's note index now (about 2 s), not on the first factual question; logged when it cannot be."""
    from routing import reference

    try:
        notes = len(reference.index().notes)
    except (ImportError, OSError, ValueError) as exc:
        log.warning("the reference notes are unavailable: %s: %s", type(exc).__name__, exc)
        return
    log.info("reference notes ready: %d WordNet senses", notes)
