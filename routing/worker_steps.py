"""Celery worker bootsteps of the routing app (registered in swarm_site/celery.py).

The interaction log's writer (routing/interaction_log.py) runs as a thread of every Celery worker that
consumes the ``default`` queue (the Procfile's, systemd's and the tests' worker-cpu): every stack drains
the log without a process of its own. It starts after the pool (a prefork pool forks before the thread
exists) and before the worker takes tasks, and stops on the worker's warm shutdown after the batch in hand;
a worker killed mid-batch leaves that batch pending, and another writer (or this one, restarted) takes it
over after SWARM_INTERACTION_CLAIM_IDLE_S.
"""

from __future__ import annotations

import os
from typing import Any

from celery import bootsteps

from swarm_site.queues import CeleryQueue


def consumed_queues(worker: Any) -> set[str]:
    """The queues a worker consumes (from `-Q`, or every queue of the app)."""
    try:
        return set(worker.app.amqp.queues.consume_from)
    except AttributeError:
        return set()


class InteractionWriterStep(bootsteps.StartStopStep):
    """The interaction log's writer thread, in workers that consume the ``default`` queue (not serving ones)."""

    label = "interaction writer"
    requires = ("celery.worker.components:Pool",)

    def include_if(self, worker: Any) -> bool:
        return os.environ.get("SWARM_WORKER_ROLE") != "gpu" and CeleryQueue.DEFAULT.value in consumed_queues(worker)

    def create(self, worker: Any) -> Any:
        from routing.interaction_log import WriterThread

        return WriterThread()
