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
# A connection is closed (the response says "Connection: close") after this many requests: see pre_request.
# 0: never.
keepalive_requests = int(os.environ.get("SWARM_WEB_KEEPALIVE_REQUESTS", "100"))
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def pre_request(worker, req):
    """Close a keep-alive connection after `keepalive_requests` requests, as nginx's keepalive_requests does.

    A web process runs Python under one interpreter lock: it uses at most one core however many threads
    it has. A client's connection stays with the process that accepted it, and a few busy connections can
    all land on one process while another idles: on 2 cores with 8 connections, head-answered requests ran
    at 280-320 req/s when one process held them all and 560-620 when the two shared them. The response that
    ends a connection says "Connection: close", so the client knows before it sends again (no request is
    lost on a closing connection), and its next connection goes to whichever process accepts first: most
    often the less busy one. `req.unreader` is the connection's, the same across its requests. The anchor
    of bench.hotpath runs this hook too: it is how the server treats connections, not one of our services.
    """
    if keepalive_requests <= 0:
        return
    served = getattr(req.unreader, "swarm_served", 0) + 1
    req.unreader.swarm_served = served
    if served >= keepalive_requests:
        req.must_close = True


def when_ready(server):
    from observability.startups import gunicorn_when_ready

    gunicorn_when_ready(server)


def post_worker_init(worker):
    from swarm_site.warmup import warm_web

    warm_web()


def child_exit(server, worker):
    from observability.metrics import mark_process_dead

    mark_process_dead(worker.pid)
