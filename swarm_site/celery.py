"""The Celery application. Its configuration is the CELERY_* block of swarm_site/settings.py."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

from swarm_site.broker import declare_worker_queues

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")

app = Celery("swarm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The interaction log's writer: a thread of every worker that consumes the `default` queue (worker-cpu).
app.steps["worker"].add("routing.worker_steps:InteractionWriterStep")
# RabbitMQ as the broker: a worker declares every queue it knows before it binds them for delayed delivery.
worker_init.connect(declare_worker_queues)
