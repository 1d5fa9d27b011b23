"""The heartbeat says what the process serves now: a beat that read the state before a swap does
not land after the swap's own announce (real Redis; the model is a stand-in, this is about ordering)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from inference import runtime

pytestmark = pytest.mark.django_db


class _Loaded:
    def describe(self) -> dict[str, Any]:
        return {"alias": "smollm2-alt", "device": "cpu", "loaded": True}


def test_a_beat_read_before_the_swap_cannot_overwrite_the_swap_s_announce(api_redis, monkeypatch):
    monkeypatch.setenv("SWARM_WORKER_NAME", "gpu0@heartbeat-test")
    monkeypatch.setattr(runtime, "_backend", None)  # mid-swap: nothing loaded
    read, go = threading.Event(), threading.Event()
    place_payload = runtime.place_payload

    def slow_place_payload() -> dict[str, Any]:
        if threading.current_thread().name == "beat":  # the beat has read the state; it writes late
            read.set()
            go.wait(5)
        return place_payload()

    monkeypatch.setattr(runtime, "place_payload", slow_place_payload)
    beat = threading.Thread(target=runtime.announce, args=(1.0,), name="beat")
    beat.start()
    assert read.wait(5)
    monkeypatch.setattr(runtime, "_backend", _Loaded())  # the swap commits...
    swap = threading.Thread(target=runtime.announce, name="swap")  # ...and announces at once
    swap.start()
    swap.join(0.3)  # it waits for the beat in flight rather than racing it
    go.set()
    beat.join(5)
    swap.join(5)
    beat_now = json.loads(api_redis.get(runtime.HEARTBEAT_PREFIX + "gpu0@heartbeat-test"))
    assert beat_now["loaded"] is True and beat_now["model"] == "smollm2-alt"
