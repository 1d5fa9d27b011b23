"""Worker hooks: a serving process builds its council before taking work, so the first request
does not pay for loading sympy, the fact table and the heads' warm-up."""

from __future__ import annotations

import os

from celery.signals import worker_process_init


@worker_process_init.connect
def warm_council(**_: object) -> None:
    if os.environ.get("SWARM_WORKER_ROLE") != "gpu":
        return
    from routing.heads import council

    council()
