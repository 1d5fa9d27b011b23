"""Live API keys held in each web process, so that a request does not read the key store.

A key is looked up by its secret's digest. A hit is served from this process for at most
SWARM_KEY_CACHE_S (0: every request reads the database), and only while the process listens to
the `swarm:access:keys-changed` channel in Redis:

- every change to an existing key (revoke, rotate, new limits, deletion: `ApiKey` saves and deletes,
  and the admin's bulk revoke; a new key changes nothing held) empties the cache of the process that
  made it at once, and is published once its transaction has committed; every listening process
  empties its own cache when the message comes (the post-commit message also removes what a request
  may have read just before the commit);
- a process whose subscription is not confirmed, or has failed (Redis down or silent for longer than
  the listener's socket timeout), serves no hit: it reads the database on every request until it is
  subscribed again, so a revocation is never missed for longer than that;
- only live keys are kept (never an unknown secret), so a flood of wrong keys cannot fill memory,
  and entries read while a change was under way are not kept (a generation count).

While the database is down, cached keys keep working; a key not yet seen gets the key store's 503.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from swarm_site.redis_client import REDIS_ERRORS, get_redis, redis_from_url

log = logging.getLogger(__name__)

CHANNEL = "swarm:access:keys-changed"
LISTEN_SOCKET_TIMEOUT_S = 5.0  # a silent Redis is noticed within this (plus the health check interval)
HEALTH_CHECK_INTERVAL_S = 2.0
MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, object]] = {}
        self._generation = 0
        self._subscribed = threading.Event()
        self._pid: int | None = None
        self._stop = threading.Event()  # the current listener's; a replaced listener keeps its own, set

    # -- the request's side --------------------------------------------------------------------
    def lookup(self, digest: str, read: Callable[[str], object | None]) -> object | None:
        """The live key for `digest`: from this process when it may, else `read(digest)` (the database)."""
        ttl = settings.SWARM_KEY_CACHE_S
        if ttl <= 0:
            return read(digest)
        self._ensure_listener()
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and now - hit[0] < ttl and self._subscribed.is_set():
            return hit[1]
        generation = self._generation
        key = read(digest)
        if key is not None and self._subscribed.is_set():
            with self._lock:
                if generation == self._generation:
                    if len(self._entries) >= MAX_ENTRIES:
                        self._entries.clear()
                    self._entries[digest] = (now, key)
        return key

    def invalidate(self) -> None:
        """Forget every key held (a key changed: here, or in another process)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    # -- the listener --------------------------------------------------------------------------
    def _ensure_listener(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid = pid  # a forked web worker starts its own listener and its own, empty cache
            self._entries.clear()
            self._subscribed.clear()
            self._stop = stop = threading.Event()
            threading.Thread(target=self._listen, args=(stop,), name="swarm-key-cache", daemon=True).start()

    def _listen(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            pubsub = None
            try:
                client = redis_from_url(settings.REDIS_URL, socket_connect_timeout=settings.SWARM_REDIS_TIMEOUT_S,
                                        socket_timeout=LISTEN_SOCKET_TIMEOUT_S,
                                        health_check_interval=HEALTH_CHECK_INTERVAL_S)  # fmt: skip
                pubsub = client.pubsub()
                pubsub.subscribe(CHANNEL)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe" and not stop.is_set():
                        self.invalidate()  # whatever changed while it was not listening
                        self._subscribed.set()
                        backoff = 0.5
                    elif message["type"] == "message":
                        self.invalidate()
            except REDIS_ERRORS as exc:
                if self._subscribed.is_set():
                    log.warning("API key cache off (every request reads the key store) until Redis answers: %s", exc)
            finally:
                if stop is self._stop:
                    self._subscribed.clear()
                    self.invalidate()
                if pubsub is not None:
                    with contextlib.suppress(*REDIS_ERRORS):
                        pubsub.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def wait_ready(self, timeout: float) -> bool:
        """Whether this process is listening (tests; a web process never waits for it)."""
        self._ensure_listener()
        return self._subscribed.wait(timeout)

    def reset(self) -> None:
        """Stop listening and forget everything (tests that move REDIS_URL)."""
        self._stop.set()
        self._subscribed.clear()
        with self._lock:
            self._pid = None
        self.invalidate()


key_cache = KeyCache()


def key_changed_here() -> None:
    """This process changed a key (in a transaction, maybe): empty its cache at once, and tell the
    other processes once the change is visible to them (after the commit)."""
    key_cache.invalidate()
    transaction.on_commit(keys_changed)


def keys_changed() -> None:
    """A key changed: empty this process's cache now, and tell the other processes."""
    key_cache.invalidate()
    try:
        get_redis().publish(CHANNEL, "1")
    except REDIS_ERRORS as exc:  # the listeners are cut off too, and serve no hit until they listen again
        log.warning("could not publish an API key change: %s", exc)
