"""Adapter rollout: hot reload, canary, promotion and rollback. Every change goes through here.

Each function changes the `ServingState` row under a row lock and publishes the new snapshot to
Redis after the commit (training/serving.py), so the API and the workers switch on their next
request, without a restart, and in-flight requests finish on the adapter they started with.

Promotion rule (`judge_canary`): once the canary arm has answered `SWARM_CANARY_MIN_REQUESTS`
requests that reached the model (cache and pattern hits do not exercise the adapter) since the
canary started, compare it with the stable arm over the same period:

- success = answered locally (not UNSURE, not escalated to a paid provider);
- latency = median of the logged request latency;

promote when canary success >= stable success - SWARM_CANARY_SUCCESS_TOLERANCE and canary median
latency <= stable median x (1 + SWARM_CANARY_LATENCY_TOLERANCE); roll back otherwise. The
tolerances default to 0 and 0.10: a median measured on a busy machine moves by a few percent
between two identical arms.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.models import AdapterVersion, ServingState
from training.serving import BASE, BASE_ARM, Arm, Snapshot, write_snapshot

log = logging.getLogger(__name__)

LATEST = "latest"


class RolloutError(ValueError):
    """An operator asked for something the serving state cannot do (400/404/409 at the API)."""

    error_type = "invalid_request_error"


class UnknownAdapter(RolloutError):
    error_type = "not_found_error"


class NoPassingAdapter(UnknownAdapter):
    """`latest` asked for, but every trained adapter failed its gate (or none is trained yet)."""


class GateFailed(RolloutError):
    """The adapter named failed its evaluation gate: served only with `force` (409 at the API)."""

    error_type = "conflict_error"

    def __init__(self, adapter: AdapterVersion, gate: dict[str, Any]) -> None:
        super().__init__(
            f"{adapter.version} failed its gate ({gate_text(gate)}); it is served only by an explicit override: "
            f"lora={adapter.version}&force=true"
        )
        self.adapter, self.gate = adapter, gate


def _arm(adapter: AdapterVersion | None, *, canary: bool = False) -> Arm:
    if adapter is None:
        return BASE_ARM
    return Arm(version=adapter.version, path=adapter.path, sha256=adapter.sha256, canary=canary)


def snapshot_of(state: ServingState) -> Snapshot:
    return Snapshot(
        generation=state.generation,
        stable=_arm(state.stable),
        canary=_arm(state.canary, canary=True) if state.canary else None,
        weight=state.canary_weight if state.canary else 0,
    )


def serving_state(*, lock: bool = False) -> ServingState:
    """The one ServingState row (created on first use)."""
    ServingState.objects.get_or_create(pk=1)
    query = ServingState.objects.select_related("stable", "canary")
    if lock:
        # Lock the state row only: PostgreSQL refuses FOR UPDATE on the nullable side of the outer joins
        # that select_related makes for the stable and canary versions.
        query = query.select_for_update(of=("self",))
    return query.get(pk=1)


def publish(state: ServingState | None = None) -> Snapshot:
    """Write the serving state to Redis now (after the surrounding commit, inside a transaction)."""
    snapshot = snapshot_of(state or serving_state())
    transaction.on_commit(lambda: write_snapshot(snapshot))
    return snapshot


# --- the gate's verdict ---------------------------------------------------------------------------

_EVAL_SETS = {"heldout": "the held-out set"}


def gate_of(adapter: AdapterVersion) -> dict[str, Any]:
    """Whether `adapter` passed its evaluation gate, with the figures the gate compared.

    The verdict is read from the evaluation the training run recorded (training/services.py: the new
    adapter's accuracy must reach the serving adapter's, and it may be sure of a wrong answer no more
    often), not from `status` alone: an adapter that failed and was served by a forced reload
    becomes stable, then retired, and still failed its gate. REJECTED always means failed; an
    adapter with no recorded evaluation is taken at its status. A verdict stored under
    `evaluation["gate"]` (kept there by a forced reload) wins.

    Returns {"passed", "score", "threshold", "against", "eval_set", "trusted_wrong_rate",
    "trusted_wrong_rate_max"}; the figures are None when no evaluation was recorded.
    """
    evaluation = adapter.evaluation if isinstance(adapter.evaluation, dict) else {}
    stored = evaluation.get("gate")
    if isinstance(stored, dict) and isinstance(stored.get("passed"), bool):
        return {**stored, "passed": stored["passed"] and adapter.status != AdapterVersion.Status.REJECTED}
    gate: dict[str, Any] = {"passed": adapter.status != AdapterVersion.Status.REJECTED, "score": None,
                            "threshold": None, "against": None, "eval_set": evaluation.get("eval_set"),
                            "trusted_wrong_rate": None, "trusted_wrong_rate_max": None}  # fmt: skip
    new, current = evaluation.get("new"), evaluation.get("current")
    if not (isinstance(new, dict) and isinstance(current, dict) and "accuracy" in new and "accuracy" in current):
        return gate
    gate.update(score=new["accuracy"], threshold=current["accuracy"], against=current.get("adapter"),
                trusted_wrong_rate=new.get("trusted_wrong_rate", 0.0),
                trusted_wrong_rate_max=current.get("trusted_wrong_rate", 0.0))  # fmt: skip
    # The counts when recorded (the rounded rates of two large sets can tie), both on the same set.
    accurate = _count(new, "correct", "accuracy") >= _count(current, "correct", "accuracy")
    careful = _count(new, None, "trusted_wrong_rate") <= _count(current, None, "trusted_wrong_rate")
    gate["passed"] = gate["passed"] and accurate and careful
    return gate


def _count(side: dict[str, Any], count_key: str | None, rate_key: str) -> float:
    if count_key and isinstance(side.get(count_key), int):
        return side[count_key]
    rate = float(side.get(rate_key) or 0.0)
    total = side.get("total")
    return round(rate * total) if isinstance(total, int) and total > 0 else rate


def gate_text(gate: dict[str, Any]) -> str:
    """The verdict for messages and the log: `accuracy 0.000 vs 0.025 (base) on the held-out set`."""
    if gate.get("score") is None:
        return "passed" if gate.get("passed") else "rejected, no evaluation recorded"
    against = f" ({gate['against']})" if gate.get("against") else ""
    where = gate.get("eval_set")
    where = f" on {_EVAL_SETS.get(where, where)}" if where else ""
    text = f"accuracy {gate['score']:.3f} vs {gate['threshold']:.3f}{against}{where}"
    if (gate.get("trusted_wrong_rate") or 0) > (gate.get("trusted_wrong_rate_max") or 0):
        text += f", sure and wrong {gate['trusted_wrong_rate']:.3f} vs at most {gate['trusted_wrong_rate_max']:.3f}"
    return text


def resolve(target: str) -> AdapterVersion | None:
    """`latest` (the newest adapter that passed its gate), `base` (None), `lora-v<N>` or `<N>`.

    `latest` never picks an adapter that failed its gate: with none passed it is an error
    (NoPassingAdapter), not a fall back to another choice. A version named explicitly resolves to
    that adapter whatever its fate; `reload_adapter` refuses a failed one unless forced."""
    target = target.strip()
    if target == BASE:
        return None
    if target == LATEST:
        candidates = AdapterVersion.objects.exclude(status=AdapterVersion.Status.REJECTED).order_by("-number")
        for adapter in candidates.iterator(chunk_size=16):
            if gate_of(adapter)["passed"]:
                return adapter
        newest = AdapterVersion.objects.order_by("-number").first()
        if newest is None:
            raise NoPassingAdapter("no trained adapter to load yet (train one: make evolution-once)")
        raise NoPassingAdapter(
            f"no adapter has passed its gate yet (newest: {newest.version}, {gate_text(gate_of(newest))}); "
            f"lora=base serves the base model, lora={newest.version}&force=true serves a rejected one"
        )
    number = target.removeprefix(AdapterVersion.VERSION_PREFIX)
    if not number.isdigit():
        raise RolloutError(f"lora must be 'latest', 'base' or an adapter version like 'lora-v3'; got {target!r}")
    try:
        return AdapterVersion.objects.get(number=int(number))
    except AdapterVersion.DoesNotExist:
        raise UnknownAdapter(f"no adapter version {target!r}") from None


def _retire(state: ServingState) -> None:
    if state.stable is not None:
        state.stable.status = AdapterVersion.Status.RETIRED
        state.stable.save(update_fields=["status", "updated_at"])


def _make_stable(state: ServingState, adapter: AdapterVersion | None, *, why: str) -> None:
    if state.stable_id == (adapter.pk if adapter else None):
        return  # already serving it: nothing changes, the generation stays
    _retire(state)
    if adapter is not None:
        adapter.status = AdapterVersion.Status.STABLE
        adapter.detail = why
        adapter.save(update_fields=["status", "detail", "updated_at"])
    state.stable = adapter
    state.generation += 1


def serving_now() -> dict[str, Any]:
    """What serves, from the database (reads only: nothing is created, locked or published)."""
    state = ServingState.objects.select_related("stable", "canary").filter(pk=1).first()
    return describe(snapshot_of(state if state is not None else ServingState(pk=1)))


def reload_adapter(target: str | None, *, force: bool = False, operator: str = "an operator") -> dict[str, Any]:
    """Serve `target` to everyone (ends a canary of another adapter); no target: republish as is.

    An adapter that failed its gate is refused (GateFailed) unless `force`: then it is served, a
    warning names `operator` and the adapter, and its verdict is kept in its evaluation (its status
    becomes stable, then retired, but `latest` never picks it).

    Returns what serves now, plus `gate` (the verdict on the adapter named; None for base or no
    target) and `forced` (True when the override served an adapter that failed its gate).
    `lora_version` (swarm_lora_version) goes up when the stable adapter changes.
    """
    gate: dict[str, Any] | None = None
    forced = False
    with transaction.atomic():
        state = serving_state(lock=True)
        if target:
            adapter = resolve(target)
            gate = gate_of(adapter) if adapter is not None else None
            if adapter is not None and gate is not None and not gate["passed"]:
                if not force:
                    raise GateFailed(adapter, gate)
                forced = True
                log.warning("reload of %s forced by %s: it failed its gate (%s)", adapter.version, operator,
                            gate_text(gate))  # fmt: skip
                evaluation = adapter.evaluation if isinstance(adapter.evaluation, dict) else {}
                if "gate" not in evaluation:
                    adapter.evaluation = {**evaluation, "gate": gate}
                    adapter.save(update_fields=["evaluation", "updated_at"])
            elif adapter is not None and adapter.status == AdapterVersion.Status.ROLLED_BACK:
                log.warning("reload by %s serves %s although it was rolled back: %s", operator, adapter.version,
                            adapter.detail)  # fmt: skip
            if state.canary is not None and (adapter is None or state.canary_id != adapter.pk):
                _end_canary(state, AdapterVersion.Status.ROLLED_BACK, why=f"replaced by a reload of {target}")
            elif state.canary is not None:
                state.canary = None
                state.canary_started_at = None
            why = f"loaded by a forced reload ({target}), failed its gate" if forced else f"loaded by reload ({target})"
            _make_stable(state, adapter, why=why)
            state.save()
        snapshot = publish(state)
    log.info("serving %s (generation %d)", snapshot.stable.version, snapshot.generation)
    return {**describe(snapshot), "gate": gate, "forced": forced}


def start_canary(adapter: AdapterVersion, *, weight: int | None = None) -> dict[str, Any]:
    """Serve `adapter` to `weight` % of clients (default SWARM_CANARY_WEIGHT) beside the stable one."""
    with transaction.atomic():
        state = serving_state(lock=True)
        if state.stable_id == adapter.pk:
            raise RolloutError(f"{adapter.version} already serves everyone")
        if state.canary is not None and state.canary_id != adapter.pk:
            _end_canary(state, AdapterVersion.Status.ROLLED_BACK, why=f"replaced by canary {adapter.version}")
        adapter.status = AdapterVersion.Status.CANARY
        adapter.save(update_fields=["status", "updated_at"])
        state.canary = adapter
        state.canary_weight = settings.SWARM_CANARY_WEIGHT if weight is None else _weight(weight)
        state.canary_started_at = timezone.now()
        state.save()
        snapshot = publish(state)
    log.info("canary %s at %d%%", adapter.version, snapshot.weight)
    return describe(snapshot)


def _weight(percent: int) -> int:
    if not 0 <= int(percent) <= 100:
        raise RolloutError(f"canary weight must be 0..100 percent; got {percent}")
    return int(percent)


def set_canary_weight(percent: int) -> dict[str, Any]:
    """Change the share of clients the canary serves (kept for the next canary when none runs)."""
    with transaction.atomic():
        state = serving_state(lock=True)
        state.canary_weight = _weight(percent)
        state.save(update_fields=["canary_weight", "updated_at"])
        snapshot = publish(state)
    return describe(snapshot)


def _end_canary(state: ServingState, status: str, *, why: str) -> None:
    canary = state.canary
    if canary is None:
        return
    canary.status = status
    canary.detail = why
    canary.save(update_fields=["status", "detail", "updated_at"])
    state.canary = None
    state.canary_started_at = None


def promote_canary(*, why: str = "promoted by an operator") -> dict[str, Any]:
    with transaction.atomic():
        state = serving_state(lock=True)
        if state.canary is None:
            raise RolloutError("no canary is running")
        adapter = state.canary
        state.canary = None
        state.canary_started_at = None
        _make_stable(state, adapter, why=why)
        state.save()
        snapshot = publish(state)
    log.info("promoted %s (%s)", adapter.version, why)
    return describe(snapshot)


def rollback_canary(*, why: str = "rolled back by an operator") -> dict[str, Any]:
    with transaction.atomic():
        state = serving_state(lock=True)
        if state.canary is None:
            raise RolloutError("no canary is running")
        version = state.canary.version
        _end_canary(state, AdapterVersion.Status.ROLLED_BACK, why=why)
        state.save()
        snapshot = publish(state)
    log.info("rolled back %s (%s)", version, why)
    return describe(snapshot)


def describe(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "lora_version": snapshot.generation,
        "stable": snapshot.stable.version,
        "canary": snapshot.canary.version if snapshot.canary else None,
        "canary_weight": snapshot.weight,
    }


# --- the judge -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmStats:
    requests: int
    success: float
    latency_p50_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "success": round(self.success, 4), "latency_p50_ms": self.latency_p50_ms}


def arm_stats(version: str, since) -> ArmStats:
    """How one arm did since `since`: requests that reached the model (not cache, not pattern)."""
    from routing.models import Interaction

    rows = list(
        Interaction.objects.filter(created_at__gte=since, adapter_version=version, cached=False)
        .exclude(route__in=("cache", "pattern"))
        .values_list("status", "provider", "latency_ms")
    )
    if not rows:
        return ArmStats(0, 0.0, 0.0)
    ok = sum(1 for status, provider, _ in rows if status == "ok" and not provider)
    return ArmStats(len(rows), ok / len(rows), round(statistics.median(r[2] for r in rows), 2))


def judge_canary() -> dict[str, Any]:
    """Promote or roll back the running canary once it has enough requests (see the module doc)."""
    state = serving_state()
    if state.canary is None or state.canary_started_at is None:
        return {"verdict": "no_canary"}
    stable_version = state.stable.version if state.stable else BASE
    canary = arm_stats(state.canary.version, state.canary_started_at)
    stable = arm_stats(stable_version, state.canary_started_at)
    report = {"canary": state.canary.version, "stable": stable_version, "canary_arm": canary.as_dict(),
              "stable_arm": stable.as_dict(), "min_requests": settings.SWARM_CANARY_MIN_REQUESTS}  # fmt: skip
    if canary.requests < settings.SWARM_CANARY_MIN_REQUESTS or stable.requests == 0:
        return {**report, "verdict": "waiting"}
    success_ok = canary.success >= stable.success - settings.SWARM_CANARY_SUCCESS_TOLERANCE
    latency_ok = canary.latency_p50_ms <= stable.latency_p50_ms * (1 + settings.SWARM_CANARY_LATENCY_TOLERANCE)
    why = (
        f"canary success {canary.success:.3f} vs {stable.success:.3f}, "
        f"p50 {canary.latency_p50_ms:.0f} ms vs {stable.latency_p50_ms:.0f} ms over {canary.requests} requests"
    )
    adapter = state.canary
    adapter.evaluation = {**adapter.evaluation, "canary": report}
    adapter.save(update_fields=["evaluation", "updated_at"])
    if success_ok and latency_ok:
        promote_canary(why="promoted: " + why)
        return {**report, "verdict": "promoted", "why": why}
    rollback_canary(why="rolled back: " + why)
    return {**report, "verdict": "rolled_back", "why": why}
