"""Worker hooks: a serving process builds its council before taking work, so the first request
does not pay for loading sympy, the fact table and the heads' warm-up."""

from __future__ import annotations

import logging
import os

from celery.signals import worker_process_init

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
