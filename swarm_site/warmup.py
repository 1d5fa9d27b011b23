"""Warm a web process before it takes requests: views imported, broker and Redis connected.

Without it the first request of each process pays ~0.3 s of imports and connection set-up.
"""

from __future__ import annotations

import logging

import kombu.exceptions
from django.urls import get_resolver

from swarm_site.redis_client import REDIS_ERRORS, get_blocking_redis, get_redis

log = logging.getLogger(__name__)


def warm_web() -> None:
    from swarm_site.celery import app

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    from mining.runtime import warm_up

    warm_up()  # the embedding model and the pattern index (~1 s once, instead of on a request)
    from routing.heads import fast_heads

    fast_heads()  # the exact heads answer here too (sympy's imports and first solve: ~1 s once)
    from arbiter.auth import arbiter_token

    arbiter_token()  # locally, the operators' token file (var/arbiter_token) exists once the API is up
    try:
        with app.producer_pool.acquire(block=True, timeout=2) as producer:
            producer.connection.ensure_connection(max_retries=1)
        get_redis().ping()
        get_blocking_redis().ping()
    except (*REDIS_ERRORS, kombu.exceptions.OperationalError) as exc:
        log.warning("warm-up could not reach Redis (requests will get 503 until it is back): %s", exc)
