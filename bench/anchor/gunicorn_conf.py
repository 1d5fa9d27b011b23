"""Gunicorn settings of the anchor: our API's (swarm_site/gunicorn.conf.py), read under the same
environment (WEB_CONCURRENCY, SWARM_WEB_THREADS, SWARM_HOST, SWARM_PORT), less its hooks, which start
our own services (bench/anchor/gunicorn_settings.py)."""

from bench.anchor.gunicorn_settings import ours

globals().update(ours())
