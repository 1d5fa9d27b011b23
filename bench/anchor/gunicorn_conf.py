"""Gunicorn settings of the anchor: our API's (swarm_site/gunicorn.conf.py), read under the same
environment (WEB_CONCURRENCY, SWARM_WEB_THREADS, SWARM_HOST, SWARM_PORT), less the hooks that start our
own services; the one that is how the server treats connections (pre_request) runs here too
(bench/anchor/gunicorn_settings.py)."""

from bench.anchor.gunicorn_settings import ours, shared_hooks

globals().update(ours())
globals().update(shared_hooks())
