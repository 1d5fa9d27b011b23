"""Gunicorn settings for the API. Threads, because a request waits on a worker's answer."""

import os

bind = f"{os.environ.get('SWARM_HOST', '127.0.0.1')}:{os.environ.get('SWARM_PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("SWARM_WEB_THREADS", "32"))  # settings.SWARM_WEB_THREADS: half may wait on the model
timeout = 120
# An idle keep-alive connection stays open this long. Longer than the clients' own idle expiry (httpx, which
# the openai SDK uses: 5 s; aiohttp: 15 s), so that a client never sends a request on a connection the server
# is closing at that moment (a reset, seen as a failed POST that no client retries). gunicorn's default, 2 s,
# lost 4 of 35,728 requests that way in a 5-minute soak. An idle connection costs a file descriptor.
keepalive = int(os.environ.get("SWARM_WEB_KEEPALIVE_S", "75"))
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def when_ready(server):
    from observability.startups import gunicorn_when_ready

    gunicorn_when_ready(server)


def post_worker_init(worker):
    from swarm_site.warmup import warm_web

    warm_web()


def child_exit(server, worker):
    from observability.metrics import mark_process_dead

    mark_process_dead(worker.pid)
