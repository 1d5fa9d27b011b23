"""Tokens from a worker to the API as they are generated: one Redis stream per request.

Worker side: `TokenSink.emit` appends a token (XADD) and learns in the same round trip whether the
client has gone (a cancel key the API sets), so generation stops early; `finish` appends the
final decision. API side: `relay` reads the stream with XREAD BLOCK and yields events, with a
`ping` every second of silence so a dead client is noticed while waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from swarm_site.redis_client import get_blocking_redis, get_redis

STREAM_TTL_S = 300
PING_EVERY_S = 1.0


def stream_key(request_id: str) -> str:
    return f"swarm:stream:{request_id}"


def cancel_key(request_id: str) -> str:
    return f"swarm:cancel:{request_id}"


class TokenSink:
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.key = stream_key(request_id)
        self.cancelled = False
        self.sent = 0

    def emit(self, text: str) -> bool:
        """Publish one piece; False once the client has gone (the caller should stop generating)."""
        pipe = get_redis().pipeline(transaction=False)
        pipe.xadd(self.key, {"type": "token", "text": text}, maxlen=10_000, approximate=True)
        pipe.expire(self.key, STREAM_TTL_S)
        pipe.exists(cancel_key(self.request_id))
        *_, cancelled = pipe.execute()
        self.sent += 1
        self.cancelled = bool(cancelled)
        return not self.cancelled

    def finish(self, result: dict[str, Any]) -> None:
        pipe = get_redis().pipeline(transaction=False)
        pipe.xadd(self.key, {"type": "final", "result": json.dumps(result)})
        pipe.expire(self.key, STREAM_TTL_S)
        pipe.execute()


def cancel(request_id: str) -> None:
    """The client went away: tell the worker to stop."""
    get_redis().set(cancel_key(request_id), "1", ex=STREAM_TTL_S)


def relay(request_id: str, *, deadline_s: float) -> Iterator[dict[str, Any]]:
    """Events of one request: {"type": "token", "text"}, {"type": "ping"}, then {"type": "final", "result"}.
    Raises TimeoutError when the deadline passes first."""
    client = get_blocking_redis()
    key = stream_key(request_id)
    last_id = "0-0"
    ends = time.monotonic() + deadline_s
    block_ms = int(PING_EVERY_S * 1000)
    while True:
        left = ends - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within the deadline (request {request_id})")
        # The client's socket timeout must outlast the block.
        reply = client.execute_command("XREAD", "BLOCK", min(block_ms, int(left * 1000) + 1), "STREAMS", key,
                                       last_id)  # fmt: skip
        if not reply:
            yield {"type": "ping"}
            continue
        for _, entries in reply:
            for entry_id, fields in entries:
                last_id = entry_id
                if fields.get("type") == "final":
                    client.delete(key)
                    yield {"type": "final", "result": json.loads(fields["result"])}
                    return
                yield {"type": "token", "text": fields.get("text", "")}
