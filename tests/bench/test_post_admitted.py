"""bench.reporting.post_admitted: a refusal with Retry-After is waited out within the budget (real HTTP)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bench.reporting import post_admitted


@pytest.fixture
def server():
    """A loopback server that refuses the first `refusals` posts with 503 (Retry-After `retry_after`)."""
    state = {"refusals": 0, "retry_after": "0.1", "posts": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state["posts"] += 1
            refused = state["posts"] <= state["refusals"]
            body = json.dumps({"error": "saturated"} if refused else {"answer": "ok"}).encode()
            self.send_response(503 if refused else 200)
            if refused and state["retry_after"] is not None:
                self.send_header("Retry-After", state["retry_after"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/orchestrate", state
    httpd.shutdown()


def test_refusals_with_retry_after_are_waited_out(server):
    url, state = server
    state["refusals"] = 2
    response, retries = post_admitted(requests.Session(), url, {"prompt": "hi"}, timeout_s=10)
    assert (response.status_code, response.json(), retries, state["posts"]) == (200, {"answer": "ok"}, 2, 3)


def test_a_refusal_past_the_budget_or_without_retry_after_is_final(server):
    url, state = server
    state.update(refusals=5, retry_after="30")
    response, retries = post_admitted(requests.Session(), url, {"prompt": "hi"}, timeout_s=2)
    assert (response.status_code, retries, state["posts"]) == (503, 0, 1)
    state.update(posts=0, retry_after=None)
    response, retries = post_admitted(requests.Session(), url, {"prompt": "hi"}, timeout_s=10)
    assert (response.status_code, retries, state["posts"]) == (503, 0, 1)
