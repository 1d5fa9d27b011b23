"""The web server closes a keep-alive connection after SWARM_WEB_KEEPALIVE_REQUESTS requests (gunicorn's
pre_request hook, swarm_site/gunicorn.conf.py), saying so in the response that ends it."""

from __future__ import annotations

import http.client
from urllib.parse import urlparse

LIMIT = 100  # the shipped default; the test stack does not set it


def test_a_connection_ends_after_its_hundredth_request_and_says_so(stack):
    where = urlparse(stack.url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        first_socket = None
        for served in range(1, LIMIT + 1):
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            if served == 1:
                first_socket = conn.sock
            if served < LIMIT:
                assert (response.getheader("Connection") or "keep-alive").lower() == "keep-alive", served
                assert conn.sock is first_socket, f"request {served} came on a new connection"
        assert response.getheader("Connection", "").lower() == "close"
        assert conn.sock is None  # the client closed its side, told by the response
        conn.request("GET", "/health")  # the next request opens a new connection and is answered
        assert conn.getresponse().status == 200
    finally:
        conn.close()
