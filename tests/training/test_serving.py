"""The canary split and the serving snapshot (no database, no Redis)."""

from __future__ import annotations

import pytest

from training.serving import BASE, Arm, Snapshot, choose_arm

STABLE = Arm(version="lora-v1", path="lora-v1/adapter.gguf", sha256="a" * 64)
CANARY = Arm(version="lora-v2", path="lora-v2/adapter.gguf", sha256="b" * 64, canary=True)


def snapshot(weight: int) -> Snapshot:
    return Snapshot(generation=3, stable=STABLE, canary=CANARY, weight=weight)


@pytest.mark.parametrize("weight", [1, 5, 20, 50])
def test_about_weight_percent_of_clients_get_the_canary(weight):
    clients = [f"addr:10.0.{i // 256}.{i % 256}/user:{i}" for i in range(20_000)]
    share = sum(choose_arm(snapshot(weight), c).canary for c in clients) / len(clients)
    assert abs(share - weight / 100) < 0.01 + weight / 1000  # 5 % -> 4.5..5.5 %


def test_a_client_keeps_its_arm():
    snap = snapshot(5)
    for i in range(500):
        client = f"key:{i}"
        first = choose_arm(snap, client)
        assert all(choose_arm(snap, client) == first for _ in range(3))


def test_each_canary_samples_other_clients():
    other = Snapshot(stable=STABLE, canary=Arm(version="lora-v3", path="x", sha256="c" * 64, canary=True), weight=5)
    clients = [f"key:{i}" for i in range(4000)]
    first = {c for c in clients if choose_arm(snapshot(5), c).canary}
    second = {c for c in clients if choose_arm(other, c).canary}
    assert first and second and len(first & second) < len(first) / 2


def test_zero_weight_no_canary_or_no_client_means_stable():
    assert choose_arm(snapshot(0), "key:1") == STABLE
    assert choose_arm(Snapshot(stable=STABLE), "key:1") == STABLE
    assert choose_arm(snapshot(100), None) == STABLE
    assert choose_arm(snapshot(100), "key:1") == CANARY


def test_snapshot_round_trips_through_json():
    snap = snapshot(7)
    again = Snapshot.from_json(snap.as_json())
    assert again == snap
    assert again.canary.canary and not again.stable.canary
    assert Snapshot.from_json(None) == Snapshot()
    assert Snapshot().stable.version == BASE and Snapshot().stable.as_task() is None
    assert STABLE.as_task() == {"version": "lora-v1", "path": "lora-v1/adapter.gguf", "sha256": "a" * 64}
