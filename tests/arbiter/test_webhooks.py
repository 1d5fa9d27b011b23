"""Webhook signing and delivery to a real loopback receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from arbiter import webhooks
from tests.stack import free_port

SECRET = "whsec-test"


def signed(payload: dict, *, now: float | None = None) -> tuple[bytes, dict]:
    return webhooks.build("swap_complete", payload, secret=SECRET, now=now)


def test_signature_verifies():
    body, headers = signed({"model": "smollm2-135m"})
    stamp, signature = headers["X-Swarm-Timestamp"], headers["X-Swarm-Signature"]
    assert signature.startswith("sha256=")
    expected = hmac.new(SECRET.encode(), f"{stamp}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"  # what a receiver in any language computes
    assert webhooks.verify(body, stamp, signature, SECRET)
    assert webhooks.verify(body.decode(), int(stamp), signature, SECRET)


def test_a_tampered_body_fails():
    body, headers = signed({"model": "smollm2-135m"})
    tampered = body.replace(b"smollm2-135m", b"evil-model-1")
    assert not webhooks.verify(tampered, headers["X-Swarm-Timestamp"], headers["X-Swarm-Signature"], SECRET)


def test_a_timestamp_older_than_five_minutes_fails():
    now = time.time()
    body, headers = signed({"model": "m"}, now=now - 301)
    assert not webhooks.verify(body, headers["X-Swarm-Timestamp"], headers["X-Swarm-Signature"], SECRET, now=now)
    body, headers = signed({"model": "m"}, now=now - 299)
    assert webhooks.verify(body, headers["X-Swarm-Timestamp"], headers["X-Swarm-Signature"], SECRET, now=now)


def test_a_timestamp_from_the_future_fails():
    now = time.time()
    body, headers = signed({"model": "m"}, now=now + 301)
    assert not webhooks.verify(body, headers["X-Swarm-Timestamp"], headers["X-Swarm-Signature"], SECRET, now=now)


def test_a_re_stamped_replay_fails():
    """A captured request re-sent with a fresh timestamp: the signature covers the old one."""
    now = time.time()
    body, headers = signed({"model": "m"}, now=now - 600)
    assert not webhooks.verify(body, str(int(now)), headers["X-Swarm-Signature"], SECRET, now=now)


@pytest.mark.parametrize(
    ("timestamp", "signature", "secret"),
    [(None, "x", SECRET), ("abc", "x", SECRET), ("{stamp}", None, SECRET), ("{stamp}", "{sig}", "other-secret"),
     ("{stamp}", "{sig}", ""), ("{stamp}", "deadbeef", SECRET)],
)  # fmt: skip
def test_malformed_or_wrong_inputs_fail(timestamp, signature, secret):
    body, headers = signed({"model": "m"})
    fill = {"stamp": headers["X-Swarm-Timestamp"], "sig": headers["X-Swarm-Signature"]}
    timestamp = timestamp.format(**fill) if isinstance(timestamp, str) else timestamp
    signature = signature.format(**fill) if isinstance(signature, str) else signature
    assert not webhooks.verify(body, timestamp, signature, secret)


def test_unknown_event_is_refused():
    with pytest.raises(ValueError):
        webhooks.build("swap_exploded", {}, secret=None)


def test_delivery_to_a_loopback_receiver(receiver, settings):
    settings.SWARM_SWAP_WEBHOOK_URL = receiver.url
    settings.SWARM_SWAP_WEBHOOK_SECRET = SECRET
    thread = webhooks.fire("swap_failed", {"model": "m", "reason": "boom"})
    thread.join(10)
    (delivery,) = receiver.wait()
    assert delivery.path == "/hooks/swap"
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Swarm-Event"] == "swap_failed"
    doc = delivery.json()
    assert doc["event"] == "swap_failed" and doc["model"] == "m" and doc["reason"] == "boom" and doc["id"]
    assert webhooks.verify(delivery.body, delivery.headers["X-Swarm-Timestamp"],
                           delivery.headers["X-Swarm-Signature"], SECRET)  # fmt: skip


def test_unsigned_without_a_secret(receiver, settings):
    settings.SWARM_SWAP_WEBHOOK_URL = receiver.url
    webhooks.fire("swap_complete", {"model": "m"}).join(10)
    (delivery,) = receiver.wait()
    assert "X-Swarm-Signature" not in delivery.headers and "X-Swarm-Timestamp" in delivery.headers
    assert json.loads(delivery.body)["event"] == "swap_complete"


def test_no_url_sends_nothing():
    assert webhooks.fire("swap_complete", {"model": "m"}) is None
    assert webhooks.deliver("swap_complete", {"model": "m"}) is None


def test_failures_are_logged_not_raised(receiver, caplog):
    receiver.status = 500
    assert webhooks.deliver("swap_complete", {}, url=receiver.url, secret=SECRET) is None
    assert webhooks.deliver("swap_complete", {}, url=f"http://127.0.0.1:{free_port()}/", timeout_s=1) is None
    assert webhooks.deliver("swap_complete", {}, url="file:///etc/passwd") is None
    assert "webhook swap_complete" in caplog.text


def test_redirects_are_not_followed(receiver):
    receiver.status = 302
    assert webhooks.deliver("swap_complete", {}, url=receiver.url) is None
    assert len(receiver.deliveries) == 1  # the POST was not replayed to /elsewhere
