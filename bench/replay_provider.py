#!/usr/bin/env python3
"""Reference-replay provider: a real OpenAI-compatible HTTP server on loopback that answers each
chat completion with the Titanic suite's own reference for that prompt.

It stands in for the paid cloud chain during benchmarks, so that an escalation costs what a real
provider would bill (by the same token accounting) and is answered correctly by construction:
any accuracy lost on an escalated item is then the gateway's, not the provider's. Every report
that uses it says so.

Usage: python bench/replay_provider.py --port 8765 --data bench/data/titanic_v1.yaml [--model NAME]
       (--port 0 picks a free port; the first line printed is the base URL)

Endpoints: POST /v1/chat/completions, GET /v1/models, GET /stats (counters), GET /health.

Matching: the last user message is normalized (Unicode NFKC, case-folded, whitespace collapsed,
trailing spaces stripped) and looked up among the suite's normalized prompts. An unknown prompt
gets UNKNOWN_ANSWER, a fixed refusal.

Token usage (documented, deterministic, no tokenizer needed): a text of W whitespace-separated
words counts ceil(1.3 * W) tokens (the usual ~0.75 words per token of English BPE vocabularies).
prompt_tokens = sum over messages of (ceil(1.3 * words) + 4 for the role framing) + 2 for the
reply primer; completion_tokens = ceil(1.3 * words of the answer). An answer longer than
max_tokens is cut to floor(max_tokens / 1.3) words and finishes with "length".
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

UNKNOWN_ANSWER = "I cannot answer that: the prompt is not in the replay suite."
TOKENS_PER_WORD = 1.3
MESSAGE_FRAMING_TOKENS = 4
REPLY_PRIMER_TOKENS = 2
DEFAULT_MODEL = "titanic-replay"


def normalize_prompt(text: str) -> str:
    """The matching key: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def count_tokens(text: str) -> int:
    """ceil(1.3 * whitespace-separated words); 0 for an empty text."""
    return math.ceil(TOKENS_PER_WORD * len(text.split()))


def prompt_tokens(messages: Iterable[dict[str, Any]]) -> int:
    total = sum(count_tokens(str(m.get("content") or "")) + MESSAGE_FRAMING_TOKENS for m in messages)
    return total + REPLY_PRIMER_TOKENS


def load_references(path: Path) -> dict[str, str]:
    """normalized prompt -> reference, from a suite file (.yaml with `items:` or .jsonl)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        data = yaml.safe_load(text)
        items = data["items"] if isinstance(data, dict) else data
    references: dict[str, str] = {}
    for item in items:
        key = normalize_prompt(item["prompt"])
        if key in references and references[key] != item["reference"]:
            raise ValueError(f"{path}: prompt {item['prompt']!r} appears twice with different references")
        references[key] = str(item["reference"])
    return references


def _require_loopback(host: str) -> None:
    if host == "localhost":
        return
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the replay provider binds loopback only, not {host!r}")


class ReplayProvider:
    """The server; `start()` serves in a daemon thread, `serve_forever()` in this one."""

    def __init__(self, references: dict[str, str], *, host: str = "127.0.0.1", port: int = 0,
                 model: str = DEFAULT_MODEL) -> None:  # fmt: skip
        _require_loopback(host)
        self.references = references
        self.model = model
        self.stats = {"calls": 0, "matched": 0, "unknown": 0, "bad_requests": 0, "prompt_tokens": 0,
                      "completion_tokens": 0}  # fmt: skip
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat completion for one request body (raises ValueError for a malformed one)."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("messages must be a list of objects")
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        if not users:
            raise ValueError("messages must contain a user message")
        reference = self.references.get(normalize_prompt(users[-1]))
        text = reference if reference is not None else UNKNOWN_ANSWER
        finish = "stop"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(max_tokens, int) and max_tokens > 0 and count_tokens(text) > max_tokens:
            text = " ".join(text.split()[: max(1, math.floor(max_tokens / TOKENS_PER_WORD))])
            finish = "length"
        usage_in, usage_out = prompt_tokens(messages), count_tokens(text)
        with self._lock:
            self.stats["calls"] += 1
            self.stats["matched" if reference is not None else "unknown"] += 1
            self.stats["prompt_tokens"] += usage_in
            self.stats["completion_tokens"] += usage_out
        return {
            "id": f"chatcmpl-replay-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model") or self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out,
                      "total_tokens": usage_in + usage_out},
        }  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(
                        200,
                        {
                            "object": "list",
                            "data": [
                                {"id": provider.model, "object": "model", "created": 0, "owned_by": "titanic-replay"}
                            ],
                        },
                    )
                elif self.path == "/stats":
                    with provider._lock:
                        self._send(200, {**provider.stats, "references": len(provider.references)})
                elif self.path == "/health":
                    self._send(200, {"status": "ok"})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                try:
                    body = json.loads(raw or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("the body must be a JSON object")
                    completion = provider.answer(body)
                except ValueError as exc:  # json.JSONDecodeError is a ValueError
                    with provider._lock:
                        provider.stats["bad_requests"] += 1
                    self._send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                    return
                self._send(200, completion)

        return Handler

    def start(self) -> ReplayProvider:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="replay-provider")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ReplayProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "data" / "titanic_v1.yaml")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    provider = ReplayProvider(load_references(args.data), host=args.host, port=args.port, model=args.model)
    print(provider.base_url, flush=True)
    print(f"replay provider: {len(provider.references)} references from {args.data}", file=sys.stderr, flush=True)
    try:
        provider.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        provider.server.server_close()


if __name__ == "__main__":
    main()
