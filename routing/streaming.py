"""A serving task's reply to the API: one Redis stream per request, tokens first, then the outcome.

Worker side: `TokenSink.emit` appends a token (XADD) and learns in the same round trip whether the
client has gone (a cancel key the API sets), so generation stops early; `finish` appends the
result (an answer, or a refusal such as a context overflow); `fail` appends the error a task
raised, so the API learns of it at once. Every serving task ends its stream one of these ways,
streamed or not.

API side: `relay` reads the stream with XREAD BLOCK in one-second slices and yields events, with a
`ping` for each silent slice (a dead client is noticed while waiting) and a look at the task's
stored state (a task that failed before it could write to the stream ends the wait too). Its
client's socket timeout outlasts a slice by a little, so a Redis that stops answering ends the
wait within a few seconds with a Redis error instead of holding the request until Redis returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from swarm_site.redis_client import BLOCK_MARGIN_S, BLOCK_SLICE_S, get_blocking_redis, get_redis

STREAM_TTL_S = 300
PING_EVERY_S = BLOCK_SLICE_S
READ_MARGIN_S = BLOCK_MARGIN_S


class DeadlinePassed(Exception):
    """The request's deadline passed before its task ended the stream."""


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

    def finish(self, result: dict[str, Any]) -> dict[str, Any]:
        """Close the stream with the task's result (returned, for the task to return too)."""
        self._close({"type": "final", "result": json.dumps(result)})
        return result

    def fail(self, message: str) -> None:
        """Close the stream with the error the task failed with."""
        self._close({"type": "error", "message": message})

    def _close(self, fields: dict[str, str]) -> None:
        pipe = get_redis().pipeline(transaction=False)
        pipe.xadd(self.key, fields)
        pipe.expire(self.key, STREAM_TTL_S)
        pipe.execute()


def cancel(request_id: str) -> None:
    """The client went away: tell the worker to stop."""
    get_redis().set(cancel_key(request_id), "1", ex=STREAM_TTL_S)


def relay(
    request_id: str, *, deadline_s: float, failure: Callable[[], str | None] | None = None
) -> Iterator[dict[str, Any]]:
    """Events of one request: {"type": "token", "text"} and {"type": "ping"}, then either
    {"type": "final", "result"} or {"type": "error", "message"} (the task failed; `failure`, asked
    after each silent slice, says so when the task could not write it to the stream itself).

    Raises DeadlinePassed when the deadline passes first, and redis' errors when Redis does not answer
    within a slice and READ_MARGIN_S."""
    client = get_blocking_redis()
    key = stream_key(request_id)
    last_id = "0-0"
    ends = time.monotonic() + deadline_s
    block_ms = int(PING_EVERY_S * 1000)
    while True:
        left = ends - time.monotonic()
        if left <= 0:
            raise DeadlinePassed(f"no answer within the deadline (request {request_id})")
        reply = client.execute_command("XREAD", "BLOCK", min(block_ms, int(left * 1000) + 1), "STREAMS", key,
                                       last_id)  # fmt: skip
        if not reply:
            if failure is not None and (message := failure()) is not None:
                yield {"type": "error", "message": message}
                return
            yield {"type": "ping"}
            continue
        for _, entries in reply:
            for entry_id, fields in entries:
                last_id = entry_id
                kind = fields.get("type")
                if kind in ("final", "error"):
                    client.delete(key)
                    if kind == "final":
                        yield {"type": "final", "result": json.loads(fields["result"])}
                    else:
                        yield {"type": "error", "message": fields.get("message", "")}
                    return
                yield {"type": "token", "text": fields.get("text", "")}
