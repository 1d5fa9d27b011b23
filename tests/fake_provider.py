"""A real OpenAI-compatible HTTP server on loopback whose usage and failures the test chooses."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeProvider:
    """POST /v1/chat/completions. Reports `usage` = (prompt_tokens, completion_tokens), or with
    `usage=None` exactly the worst case the gateway reserves for the request (see `usage_for`)."""

    def __init__(self, *, answer: str = "Canberra", usage: tuple[int, int] | None = (20, 5),
                 delay_s: float = 0.0, tool_calls: list[dict[str, Any]] | None = None,
                 host: str = "127.0.0.1") -> None:  # fmt: skip
        self.answer = answer
        self.tool_calls = tool_calls  # set: the answer is these calls (content null, finish_reason tool_calls)
        self.usage = usage
        self.delay_s = delay_s
        self.failures: deque[int | str] = deque()  # next responses: an HTTP status, or "truncate"
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def usage_for(self, body: dict[str, Any]) -> tuple[int, int]:
        if self.usage is not None:
            return self.usage
        from budget.pricing import prompt_token_bound  # bill exactly the worst case the gateway reserved

        return prompt_token_bound(body["messages"]), int(body["max_tokens"])

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.calls += 1
                    fake.requests.append(body)
                    failure = fake.failures.popleft() if fake.failures else None
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if isinstance(failure, int):
                    payload = json.dumps({"error": {"message": "injected", "type": "server_error"}}).encode()
                    self.send_response(failure)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                prompt_tokens, completion_tokens = fake.usage_for(body)
                message = {"role": "assistant", "content": fake.answer}
                finish = "stop"
                if fake.tool_calls:
                    message = {"role": "assistant", "content": None, "tool_calls": fake.tool_calls}
                    finish = "tool_calls"
                payload = json.dumps({
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if failure == "truncate":
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(payload)

        return Handler

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
