from __future__ import annotations

import os

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability (Prometheus metrics)"

    def ready(self) -> None:
        # A Celery pool process that exits cleanly drops its `live*` gauge files (e.g.
        # swarm_trainer_running) so a finished trainer does not read as running. Processes
        # killed hard are pruned by the exporter (see metrics.prune_dead_processes).
        from celery.signals import worker_process_shutdown

        worker_process_shutdown.connect(_mark_this_process_dead, weak=False, dispatch_uid="swarm-metrics-dead")

        # Celery workers and beat count their starts in Redis (service_startups_total).
        from observability.startups import connect_celery_signals

        connect_celery_signals()


def _mark_this_process_dead(**_kwargs: object) -> None:
    from observability.metrics import mark_process_dead

    mark_process_dead(os.getpid())
