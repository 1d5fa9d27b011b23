"""Worker hooks: a serving process builds its council before taking work, so the first request
does not pay for loading sympy, the fact table and the heads' warm-up; and it times each serving
task, how long the request held its place (what the API's admission estimates waits from)."""

from __future__ import annotations

import logging
import os
import time

from celery.signals import task_postrun, task_prerun, worker_process_init

log = logging.getLogger(__name__)


@worker_process_init.connect
def warm_council(**_: object) -> None:
    if os.environ.get("SWARM_WORKER_ROLE") != "gpu":
        return
    from routing.chat import warm_up as warm_chat
    from routing.heads import council

    council()
    try:
        warm_chat()  # the small-talk classifier and its embedding model (~1 s once, not on a request)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        log.warning("the small-talk classifier could not be loaded (agent0 will not trust small talk): %s", exc)


_started: dict[str, float] = {}  # task id -> when this process started it (one task at a time per process)


@task_prerun.connect
def serving_task_started(task_id: str | None = None, task: object = None, **_: object) -> None:
    from routing.tasks import SERVING_TASKS

    if task_id and getattr(task, "name", None) in SERVING_TASKS:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def serving_task_done(task_id: str | None = None, **_: object) -> None:
    started = _started.pop(task_id, None) if task_id else None
    if started is not None:
        from inference.runtime import record_service

        record_service(time.perf_counter() - started)
