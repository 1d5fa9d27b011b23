"""The GPU swap lock: one holder at a time, on Redis, with a secret token and a fencing number.

Keys (the API's Redis, `swarm_site.redis_client.get_redis`):

- ``swarm:arbiter:lock``: a hash ``{token_sha256, fencing, holder, purpose, acquired_at_ms,
  expires_at_ms}`` with a PX TTL; the key's TTL is the lease. Only the SHA-256 of the token is
  stored, so anything that can read Redis (workers, Flower, an operator's redis-cli) still cannot
  release or renew someone else's lease.
- ``swarm:arbiter:fencing``: an INCR counter that never expires. Every acquisition takes the next
  number, so a later lease always has a larger fencing number than an earlier one.

Atomicity: every write is one Lua script (EVALSHA, falling back to EVAL), not SET NX + a MULTI:
acquire checks EXISTS, INCRs the counter and writes the hash + PEXPIRE in one step (no number is
burnt by a losing contender, and a lease never exists without its fencing number); release and
renew compare the token digest and then delete / re-expire in the same step (compare-and-delete),
so a holder whose lease expired and was taken can never delete or extend the new holder's lease.
Times come from the Redis server clock (TIME), so every process agrees on `expires_at`.

Fencing: a guarded action (the model swap itself) calls `check_fencing(n)` at its commit point;
it passes only while the live lease carries exactly number `n`. A holder whose lease expired is
refused even if it still believes it holds the lock, whether or not someone else took it since.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from swarm_site.redis_client import REDIS_ERRORS, get_redis

log = logging.getLogger(__name__)

LOCK_KEY = "swarm:arbiter:lock"
FENCING_KEY = "swarm:arbiter:fencing"
MIN_TTL_S = 0.1
MAX_TTL_S = 24 * 3600.0

_NOW_MS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

# KEYS: lock, fencing counter. ARGV: token digest, holder, purpose, ttl ms.
# -> {1, fencing, expires_at_ms} | {0, holder, fencing, expires_at_ms, purpose, pttl}
_ACQUIRE = (
    """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local h = redis.call('HMGET', KEYS[1], 'holder', 'fencing', 'expires_at_ms', 'purpose')
  return {0, h[1] or '', h[2] or '0', h[3] or '0', h[4] or '', redis.call('PTTL', KEYS[1])}
end
local fencing = redis.call('INCR', KEYS[2])
"""
    + _NOW_MS
    + """
local ttl = tonumber(ARGV[4])
local expires = string.format('%d', now_ms + ttl)
redis.call('HSET', KEYS[1], 'token_sha256', ARGV[1], 'fencing', fencing, 'holder', ARGV[2],
           'purpose', ARGV[3], 'acquired_at_ms', string.format('%d', now_ms), 'expires_at_ms', expires)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, fencing, expires}
"""
)

# KEYS: lock. ARGV: token digest. -> 1 released | 0 nothing held | -1 held by another lease
_RELEASE = """
local digest = redis.call('HGET', KEYS[1], 'token_sha256')
if not digest then return 0 end
if digest ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: lock. ARGV: token digest, ttl ms. -> {1, fencing, expires_at_ms, holder, purpose} | {0} | {-1}
_RENEW = (
    """
local digest = redis.call('HGET', KEYS[1], 'token_sha256')
if not digest then return {0} end
if digest ~= ARGV[1] then return {-1} end
"""
    + _NOW_MS
    + """
local ttl = tonumber(ARGV[2])
local expires = string.format('%d', now_ms + ttl)
redis.call('HSET', KEYS[1], 'expires_at_ms', expires)
redis.call('PEXPIRE', KEYS[1], ttl)
local h = redis.call('HMGET', KEYS[1], 'fencing', 'holder', 'purpose')
return {1, h[1], expires, h[2] or '', h[3] or ''}
"""
)

# KEYS: lock. -> the hash as a flat list (empty when nothing was held), deleted in the same step.
_FORCE = """
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return fields
"""

_scripts: dict[str, Any] = {}


class LockError(Exception):
    """Base of the lock's refusals."""


class LockHeld(LockError):
    """Someone else holds the lock."""

    def __init__(self, status: LockStatus) -> None:
        self.status = status
        super().__init__(f"the GPU lock is held by {status.holder!r} until {status.expires_at_iso()}")


class LockNotHeld(LockError):
    """The presented token does not hold the lock (expired, released, or never issued)."""


class StaleFencing(LockError):
    """A fencing number that is no longer the live lease's: the guarded action must not run."""


@dataclass(frozen=True)
class Lease:
    """What `acquire` hands the holder. `token` is the secret that releases or renews it."""

    token: str = field(repr=False)
    fencing: int
    expires_at: datetime
    holder: str
    purpose: str
    ttl_s: float

    def public(self) -> dict[str, Any]:
        """The acquirer's own view (token included: it is returned once, to the holder)."""
        return {
            "token": self.token,
            "fencing": self.fencing,
            "expires_at": self.expires_at.isoformat(),
            "holder": self.holder,
            "purpose": self.purpose,
            "ttl_s": self.ttl_s,
        }


@dataclass(frozen=True)
class LockStatus:
    """The lock as anyone may see it: never the token."""

    held: bool
    holder: str | None = None
    purpose: str | None = None
    fencing: int | None = None
    acquired_at: datetime | None = None
    expires_at: datetime | None = None
    remaining_s: float | None = None

    def expires_at_iso(self) -> str | None:
        return self.expires_at.isoformat() if self.expires_at else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "holder": self.holder,
            "purpose": self.purpose,
            "fencing": self.fencing,
            "acquired_at": self.acquired_at.isoformat() if self.acquired_at else None,
            "expires_at": self.expires_at_iso(),
            "remaining_s": self.remaining_s,
        }

    def summary(self) -> str:
        if not self.held:
            return "The GPU lock is free."
        what = f" for {self.purpose!r}" if self.purpose else ""
        return (
            f"The GPU lock is held by {self.holder!r}{what} (fencing {self.fencing}) "
            f"until {self.expires_at_iso()} ({self.remaining_s:.1f}s left)."
        )


def _script(name: str, source: str) -> Any:
    client = get_redis()
    cached = _scripts.get(name)
    if cached is None or cached[0] is not client:  # get_redis() was rebuilt (settings changed)
        cached = (client, client.register_script(source))
        _scripts[name] = cached
    return cached[1]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _from_ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError):
        return None


def _ttl_ms(ttl_s: float) -> int:
    if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between {MIN_TTL_S} and {MAX_TTL_S:.0f} seconds")
    return round(ttl_s * 1000)


def acquire(holder: str, ttl_s: float, purpose: str = "") -> Lease:
    """Take the lock for `ttl_s` seconds or raise `LockHeld` (with who holds it and until when)."""
    token = secrets.token_urlsafe(32)
    ttl_ms = _ttl_ms(ttl_s)
    out = _script("acquire", _ACQUIRE)(keys=[LOCK_KEY, FENCING_KEY], args=[_digest(token), holder, purpose, ttl_ms])
    if int(out[0]) != 1:
        _, who, fencing, expires_ms, what, pttl = out
        raise LockHeld(
            LockStatus(
                held=True, holder=who, purpose=what, fencing=int(fencing), expires_at=_from_ms(expires_ms),
                remaining_s=max(int(pttl), 0) / 1000,
            )
        )  # fmt: skip
    lease = Lease(token=token, fencing=int(out[1]), expires_at=_from_ms(out[2]), holder=holder, purpose=purpose,
                  ttl_s=ttl_s)  # fmt: skip
    log.info("GPU lock taken by %r for %r (fencing %d, %.1fs)", holder, purpose, lease.fencing, ttl_s)
    return lease


def acquire_waiting(holder: str, ttl_s: float, purpose: str = "", *, wait_s: float = 0.0, poll_s: float = 0.2) -> Lease:
    """`acquire`, retrying while the lock is held for up to `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return acquire(holder, ttl_s, purpose)
        except LockHeld:
            if time.monotonic() + poll_s > deadline:
                raise
            time.sleep(poll_s)


def release(token: str) -> None:
    """Release the lock; only the holder's token can. `LockNotHeld` otherwise."""
    outcome = int(_script("release", _RELEASE)(keys=[LOCK_KEY], args=[_digest(token)]))
    if outcome == 0:
        raise LockNotHeld("the lock is not held (the lease expired or was released)")
    if outcome < 0:
        raise LockNotHeld("the lock is held by another lease; this token no longer holds it")
    log.info("GPU lock released")


def renew(token: str, ttl_s: float) -> Lease:
    """Push the holder's expiry to now + `ttl_s`. `LockNotHeld` when the token no longer holds it."""
    out = _script("renew", _RENEW)(keys=[LOCK_KEY], args=[_digest(token), _ttl_ms(ttl_s)])
    if int(out[0]) != 1:
        raise LockNotHeld(
            "the lease expired and was taken by another holder" if int(out[0]) < 0 else "the lease expired"
        )
    return Lease(token=token, fencing=int(out[1]), expires_at=_from_ms(out[2]), holder=out[3], purpose=out[4],
                 ttl_s=ttl_s)  # fmt: skip


extend = renew


def status() -> LockStatus:
    """Who holds the lock, for what, until when. Never the token."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.hgetall(LOCK_KEY)
    pipe.pttl(LOCK_KEY)
    fields, pttl = pipe.execute()
    return _status_from(fields, pttl)


def _status_from(fields: dict[str, str], pttl: int) -> LockStatus:
    if not fields:
        return LockStatus(held=False)
    return LockStatus(
        held=True,
        holder=fields.get("holder"),
        purpose=fields.get("purpose"),
        fencing=int(fields.get("fencing", 0)),
        acquired_at=_from_ms(fields.get("acquired_at_ms")),
        expires_at=_from_ms(fields.get("expires_at_ms")),
        remaining_s=max(int(pttl), 0) / 1000 if pttl is not None else None,
    )


def verify_lease(token: str, fencing: int) -> LockStatus:
    """The live lease, if `token` holds it with fencing number `fencing`.

    Raises `LockHeld` when another lease holds the lock, `LockNotHeld` when nothing does,
    `StaleFencing` when the token holds it but under another number.
    """
    pipe = get_redis().pipeline(transaction=True)
    pipe.hgetall(LOCK_KEY)
    pipe.pttl(LOCK_KEY)
    fields, pttl = pipe.execute()
    current = _status_from(fields, pttl)
    if not current.held:
        raise LockNotHeld("the lock is not held (the lease expired or was released)")
    if not secrets.compare_digest(fields.get("token_sha256", ""), _digest(token)):
        raise LockHeld(current)
    if current.fencing != fencing:
        raise StaleFencing(f"fencing {fencing} does not match the live lease's {current.fencing}")
    return current


def check_fencing(fencing: int) -> LockStatus:
    """Pass only while the live lease carries exactly `fencing`; `StaleFencing` otherwise.

    Called by every guarded action at its commit point: a holder whose lease expired (taken by
    someone else or not) is refused even if it still believes it holds the lock.
    """
    pipe = get_redis().pipeline(transaction=True)
    pipe.hgetall(LOCK_KEY)
    pipe.pttl(LOCK_KEY)
    pipe.get(FENCING_KEY)
    fields, pttl, counter = pipe.execute()
    current = _status_from(fields, pttl)
    if current.held and current.fencing == fencing:
        return current
    latest = int(counter or 0)
    if fencing > latest:
        reason = f"fencing {fencing} was never issued (latest is {latest})"
    elif current.held:
        reason = f"lease {fencing} was superseded by lease {current.fencing} held by {current.holder!r}"
    else:
        reason = f"lease {fencing} is no longer held (it expired or was released)"
    raise StaleFencing(f"stale fencing token: {reason}")


def force_release(by: str) -> LockStatus:
    """Drop whatever lease holds the lock (staff only, enforced by the caller). The lock as it was."""
    fields = _script("force", _FORCE)(keys=[LOCK_KEY])
    flat = dict(zip(fields[::2], fields[1::2], strict=True))
    previous = _status_from(flat, None)
    if previous.held:
        log.warning("GPU lock force-released by %r (was held by %r for %r, fencing %s)", by, previous.holder,
                    previous.purpose, previous.fencing)  # fmt: skip
    return previous


# --- the trainer's context manager ----------------------------------------------------------------


class HeldLock:
    """The lease `held()` keeps alive. `check()` before every guarded step."""

    def __init__(self, lease: Lease, *, renew_every_s: float) -> None:
        self.lease = lease
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renew_every_s = renew_every_s
        self._thread = threading.Thread(target=self._keep, name="swarm-arbiter-renew", daemon=True)

    @property
    def fencing(self) -> int:
        return self.lease.fencing

    @property
    def token(self) -> str:
        return self.lease.token

    def check(self) -> LockStatus:
        """`StaleFencing` / `LockNotHeld` when the lease was lost; the live status otherwise."""
        if self.lost.is_set():
            raise LockNotHeld(f"lease {self.fencing} was lost (renewal failed)")
        return check_fencing(self.fencing)

    def _keep(self) -> None:
        while not self._stop.wait(self._renew_every_s):
            try:
                self.lease = renew(self.lease.token, self.lease.ttl_s)
            except LockNotHeld as exc:
                log.error("GPU lock lease %d lost: %s", self.fencing, exc)
                self.lost.set()
                return
            except REDIS_ERRORS as exc:  # keep trying: the lease survives until its TTL
                log.warning("could not renew GPU lock lease %d: %s", self.fencing, exc)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def held(
    purpose: str,
    ttl_s: float = 60.0,
    *,
    holder: str | None = None,
    wait_s: float = 0.0,
    renew_every_s: float | None = None,
) -> Iterator[HeldLock]:
    """Hold the lock for the body of the `with`: acquire (waiting up to `wait_s`), renew in a
    background thread every `renew_every_s` (default ttl/3), release on the way out.

    The body should call `.check()` before each guarded action: when a renewal fails (the
    process stalled past its TTL and someone else took the lock) `.lost` is set and `.check()`
    raises. Raises `LockHeld` when the lock stays taken for `wait_s`.
    """
    who = holder or f"{purpose}@{socket.gethostname()}:{os.getpid()}"
    lease = acquire_waiting(who, ttl_s, purpose, wait_s=wait_s)
    keeper = HeldLock(lease, renew_every_s=renew_every_s or max(ttl_s / 3, MIN_TTL_S / 2))
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()
        try:
            release(keeper.lease.token)
        except LockNotHeld as exc:
            log.warning("GPU lock lease %d was already gone at release: %s", keeper.fencing, exc)
        except REDIS_ERRORS as exc:
            log.warning("could not release GPU lock lease %d (it expires at its TTL): %s", keeper.fencing, exc)
