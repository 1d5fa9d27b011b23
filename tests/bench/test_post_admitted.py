"""bench.reporting.post_admitted: a refusal with Retry-After is waited out within the budget (real HTTP)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bench.reporting import FairTurns, post_admitted


@contextlib.contextmanager
def _serving(post: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A loopback HTTP server whose POSTs `post` answers; yields the URL of its /orchestrate."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            post(self)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/orchestrate"
    finally:
        httpd.shutdown()


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict, *, retry_after: str | None = None) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    if retry_after is not None:
        handler.send_header("Retry-After", retry_after)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def server():
    """A loopback server that refuses the first `refusals` posts with 503 (Retry-After `retry_after`)."""
    state = {"refusals": 0, "retry_after": "0.1", "posts": 0}

    def post(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        state["posts"] += 1
        refused = state["posts"] <= state["refusals"]
        _reply(handler, 503 if refused else 200, {"error": "saturated"} if refused else {"answer": "ok"},
               retry_after=state["retry_after"] if refused else None)  # fmt: skip

    with _serving(post) as url:
        yield url, state


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


@pytest.fixture
def one_place():
    """A loopback server with one serving place: a post holds it for `hold_s`, a post that finds it taken
    gets 503 with a long Retry-After at once. Records the order in which posts were served."""
    state = {"hold_s": 0.5, "served": [], "refused": 0}
    place = threading.Lock()

    def post(handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length", 0))))
        if place.acquire(blocking=False):
            try:
                time.sleep(state["hold_s"])
                state["served"].append(body["prompt"])
            finally:
                place.release()
            _reply(handler, 200, {"answer": body["prompt"]})
        else:
            state["refused"] += 1
            _reply(handler, 503, {"error": "saturated"}, retry_after="5")

    with _serving(post) as url:
        yield url, state


def _client_threads(url: str, turns: FairTurns | None) -> None:
    """Thread A sends a1, then a2 and a3 each as soon as the one before is answered; thread B sends b1
    while a1 holds the place."""

    def a():
        for prompt in ("a1", "a2", "a3"):
            post_admitted(requests.Session(), url, {"prompt": prompt}, timeout_s=30, turns=turns)

    def b():
        time.sleep(0.1)
        post_admitted(requests.Session(), url, {"prompt": "b1"}, timeout_s=30, turns=turns)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_refused_request_is_served_before_the_client_s_next_new_one(one_place):
    url, state = one_place
    started = time.monotonic()
    _client_threads(url, FairTurns())
    assert state["served"] == ["a1", "b1", "a2", "a3"], state
    assert time.monotonic() - started < 4.0  # b1 went when a1 ended, not after its 5 s Retry-After


def test_without_turns_the_answered_thread_takes_the_place_first(one_place):
    url, state = one_place
    _client_threads(url, None)
    assert state["served"][:3] == ["a1", "a2", "a3"], state  # b1 waits out its Retry-After: starved meanwhile
