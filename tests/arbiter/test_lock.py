"""The lock service on real Redis: one holder, expiry, compare-and-delete, renewal, fencing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from arbiter import lock


def test_acquire_gives_a_secret_token_a_fencing_number_and_an_expiry():
    first = lock.acquire("trainer", 30, "lora run")
    assert len(first.token) >= 40
    assert first.expires_at > datetime.now(UTC)
    assert first.token not in repr(first)
    status = lock.status()
    assert status.held and status.holder == "trainer" and status.purpose == "lora run"
    assert status.fencing == first.fencing and 29 < status.remaining_s <= 30
    assert "token" not in status.as_dict() and first.token not in str(status.as_dict())
    lock.release(first.token)
    second = lock.acquire("trainer", 30)
    assert second.fencing == first.fencing + 1  # monotonic


def test_redis_stores_only_the_digest_of_the_token(redis10):
    lease = lock.acquire("a", 30)
    stored = redis10.hgetall(lock.LOCK_KEY)
    assert lease.token not in stored.values()
    assert len(stored["token_sha256"]) == 64


def test_a_held_lock_refuses_others_and_says_who_holds_it():
    holder = lock.acquire("trainer", 30, "nightly")
    with pytest.raises(lock.LockHeld) as refused:
        lock.acquire("swapper", 30)
    assert refused.value.status.holder == "trainer"
    assert refused.value.status.fencing == holder.fencing
    assert refused.value.status.expires_at == holder.expires_at


def test_twenty_concurrent_acquires_give_exactly_one_lease():
    barrier = threading.Barrier(20)
    leases, refusals = [], []

    def contender(n: int) -> None:
        barrier.wait()
        try:
            leases.append(lock.acquire(f"c{n}", 30))
        except lock.LockHeld as exc:
            refusals.append(exc)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(leases) == 1 and len(refusals) == 19
    assert {r.status.holder for r in refusals} == {leases[0].holder}
    assert lock.status().fencing == leases[0].fencing


def test_an_expired_lock_can_be_taken():
    old = lock.acquire("stalled", 0.3)
    time.sleep(0.45)
    assert not lock.status().held
    new = lock.acquire("next", 30)
    assert new.fencing == old.fencing + 1


def test_only_the_holder_releases():
    lease = lock.acquire("a", 30)
    with pytest.raises(lock.LockNotHeld):
        lock.release("not-the-token")
    assert lock.status().held
    lock.release(lease.token)
    assert not lock.status().held
    with pytest.raises(lock.LockNotHeld):
        lock.release(lease.token)


def test_a_stale_holder_cannot_release_or_renew_the_new_holders_lease():
    stale = lock.acquire("stalled", 0.3)
    time.sleep(0.45)
    fresh = lock.acquire("next", 30)
    with pytest.raises(lock.LockNotHeld):
        lock.release(stale.token)
    with pytest.raises(lock.LockNotHeld):
        lock.renew(stale.token, 30)
    assert lock.status().fencing == fresh.fencing


def test_renew_pushes_the_expiry():
    lease = lock.acquire("a", 1.0, "p")
    renewed = lock.renew(lease.token, 30)
    assert renewed.fencing == lease.fencing and renewed.expires_at > lease.expires_at
    assert renewed.holder == "a" and renewed.purpose == "p"
    time.sleep(1.3)
    assert lock.status().held
    assert lock.extend is lock.renew


def test_ttl_bounds():
    with pytest.raises(ValueError):
        lock.acquire("a", 0.01)
    with pytest.raises(ValueError):
        lock.acquire("a", lock.MAX_TTL_S + 1)


def test_check_fencing_passes_only_for_the_live_lease():
    first = lock.acquire("a", 1.0)
    assert lock.check_fencing(first.fencing).holder == "a"
    time.sleep(1.2)
    with pytest.raises(lock.StaleFencing, match="no longer held"):  # expired, nobody took it
        lock.check_fencing(first.fencing)
    second = lock.acquire("b", 30)
    with pytest.raises(lock.StaleFencing, match="superseded"):  # expired and taken
        lock.check_fencing(first.fencing)
    with pytest.raises(lock.StaleFencing, match="never issued"):
        lock.check_fencing(second.fencing + 5)
    assert lock.check_fencing(second.fencing).fencing == second.fencing


def test_verify_lease():
    lease = lock.acquire("a", 30)
    assert lock.verify_lease(lease.token, lease.fencing).holder == "a"
    with pytest.raises(lock.StaleFencing):
        lock.verify_lease(lease.token, lease.fencing - 1)
    with pytest.raises(lock.LockHeld):
        lock.verify_lease("someone-else", lease.fencing)
    lock.release(lease.token)
    with pytest.raises(lock.LockNotHeld):
        lock.verify_lease(lease.token, lease.fencing)


def test_force_release_drops_any_lease():
    lease = lock.acquire("wedged", 300, "crashed trainer")
    previous = lock.force_release(by="admin")
    assert previous.held and previous.holder == "wedged" and previous.fencing == lease.fencing
    assert not lock.status().held
    assert not lock.force_release(by="admin").held  # nothing held: a no-op


def test_held_renews_in_the_background_and_releases_on_exit():
    with lock.held("lora-nightly", ttl_s=1.5, holder="trainer") as held:
        time.sleep(4)  # well past the TTL: the keeper renewed it
        assert held.check().holder == "trainer"
        with pytest.raises(lock.LockHeld):
            lock.acquire("swapper", 30)
    assert not lock.status().held


def test_held_waits_for_the_lock_or_gives_up():
    blocker = lock.acquire("other", 0.5)
    with lock.held("job", ttl_s=5, wait_s=3) as held:
        assert held.fencing == blocker.fencing + 1
    lock.acquire("other", 30)
    with pytest.raises(lock.LockHeld), lock.held("job", ttl_s=5, wait_s=0.3):
        pass


def test_held_notices_a_lost_lease():
    with lock.held("job", ttl_s=0.6) as held:
        lock.force_release(by="admin")
        taker = lock.acquire("taker", 30)
        assert held.lost.wait(5)  # the next renewal found someone else's lease
        with pytest.raises(lock.LockError):
            held.check()
    assert lock.status().fencing == taker.fencing  # leaving did not release the taker's lease
