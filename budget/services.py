"""Budget services: reserve before a paid call, settle to the real usage after, release on failure.

Atomicity: a reservation is one transaction that locks the day's BudgetDay row
(SELECT ... FOR UPDATE on PostgreSQL; SQLite runs every transaction as BEGIN IMMEDIATE, see
settings), then checks ledger spend + held reservations + this amount against the pool. Two
reservations for one day therefore never interleave, in any number of processes. Each step is
idempotent per key (request id + provider). A database error on the way in fails closed: no
reservation, so no paid call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import DatabaseError, transaction
from django.db.models import Sum
from django.utils import timezone

from budget.models import BudgetDay, BudgetPolicy, LedgerEntry, Provider, ProviderCall, Reservation

log = logging.getLogger(__name__)

ZERO = Decimal("0")
RETIRE_WINDOW = 10  # calls
RETIRE_MIN_SUCCESS = 0.10


class BudgetError(RuntimeError):
    """No paid call may be made."""


class BudgetExceeded(BudgetError):
    """This one call would cost more than the per-request cap."""


class BudgetExhausted(BudgetError):
    """The daily pool has no room for this call."""


class BudgetUnavailable(BudgetError):
    """The budget store cannot be reached: fail closed."""


def utc_day(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


def policy_get() -> BudgetPolicy:
    policy, _ = BudgetPolicy.objects.get_or_create(pk=1)
    return policy


def _sum(queryset, field: str) -> Decimal:
    return queryset.aggregate(total=Sum(field))["total"] or ZERO


def spent_on(day_row: BudgetDay) -> Decimal:
    """Spend of a day, derived from the ledger (since the day's last reset)."""
    entries = LedgerEntry.objects.filter(day=day_row.day)
    if day_row.reset_at:
        entries = entries.filter(created_at__gte=day_row.reset_at)
    return _sum(entries, "cost_usd")


def held_on(day: date) -> Decimal:
    return _sum(Reservation.objects.filter(day=day, state=Reservation.State.HELD), "amount_usd")


def _day_row(day: date) -> BudgetDay:
    row, _ = BudgetDay.objects.get_or_create(day=day)  # outside the lock: creation races are handled there
    return row


@dataclass(frozen=True)
class Held:
    reservation: Reservation
    created: bool


def key_committed(*, day: date, api_key_id: int) -> Decimal:
    """What one API key has spent and holds on a day (its own cap, inside the global pool)."""
    spent = _sum(LedgerEntry.objects.filter(day=day, api_key_id=api_key_id), "cost_usd")
    held = _sum(Reservation.objects.filter(day=day, api_key_id=api_key_id, state=Reservation.State.HELD), "amount_usd")
    return spent + held


def budget_reserve(
    *, request_id: str, provider: Provider, amount: Decimal, now: datetime | None = None, api_key=None
) -> Held:
    """Hold `amount` of today's pool (and of `api_key`'s daily budget, if it has one) for one call,
    or raise BudgetExceeded / BudgetExhausted / BudgetUnavailable."""
    now = now or timezone.now()
    day = utc_day(now)
    key = f"{request_id}:{provider.pk}"
    try:
        policy = policy_get()
        if amount > policy.per_request_cap_usd:
            raise BudgetExceeded(f"BudgetExceeded: cost per request exceeded {policy.per_request_cap_usd.normalize()}")
        _day_row(day)
        with transaction.atomic():
            row = BudgetDay.objects.select_for_update().get(day=day)
            existing = Reservation.objects.filter(key=key).first()
            if existing:
                return Held(existing, created=False)
            committed = spent_on(row) + held_on(day)
            if committed + amount > policy.daily_pool_usd:
                raise BudgetExhausted(
                    f"BudgetExhausted: daily pool {policy.daily_pool_usd.normalize()} has "
                    f"{max(ZERO, policy.daily_pool_usd - committed).normalize()} left, this call needs {amount}"
                )
            key_cap = getattr(api_key, "daily_budget_usd", None)
            if key_cap is not None and key_committed(day=day, api_key_id=api_key.pk) + amount > key_cap:
                raise BudgetExhausted(f"BudgetExhausted: the daily budget {key_cap.normalize()} of key "
                                      f"{api_key.name!r} has no room for this call ({amount})")  # fmt: skip
            reservation = Reservation.objects.create(
                key=key,
                request_id=request_id,
                day=day,
                provider=provider,
                amount_usd=amount,
                created_at=now,
                api_key_id=getattr(api_key, "pk", None),
            )
        return Held(reservation, created=True)
    except DatabaseError as exc:
        raise BudgetUnavailable(f"budget store unavailable, no paid call made: {exc}") from None


def budget_settle(
    *, reservation: Reservation, prompt_tokens: int, completion_tokens: int, answer: str, now: datetime | None = None
) -> LedgerEntry:
    """Turn a held reservation into a ledger row at the provider's reported usage (idempotent).

    It takes the day's lock too: a reservation summing "ledger + held" must never see the moment
    between this reservation leaving "held" and its ledger row arriving, or it would count neither.
    """
    with transaction.atomic():
        BudgetDay.objects.select_for_update().get(day=reservation.day)
        held = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if held.state == Reservation.State.SETTLED:
            return held.ledger
        entry = LedgerEntry.objects.create(
            reservation=held,
            request_id=held.request_id,
            day=held.day,  # the day it was reserved in: a call straddling midnight counts once
            provider=held.provider,
            api_key_id=held.api_key_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=held.provider.cost(prompt_tokens, completion_tokens),
            reserved_usd=held.amount_usd,
            answer=answer,
            created_at=now or timezone.now(),
        )
        held.state = Reservation.State.SETTLED
        held.save(update_fields=["state"])
    if entry.cost_usd > entry.reserved_usd:
        log.error("provider %s billed %s over the reserved %s for %s", held.provider, entry.cost_usd,
                  entry.reserved_usd, held.request_id)  # fmt: skip
    return entry


def budget_release(*, reservation: Reservation) -> None:
    """Give a failed call's hold back to the pool (only a held reservation changes)."""
    with transaction.atomic():
        BudgetDay.objects.select_for_update().get(day=reservation.day)
        Reservation.objects.filter(pk=reservation.pk, state=Reservation.State.HELD).update(
            state=Reservation.State.RELEASED
        )


def budget_reset(*, now: datetime | None = None) -> BudgetDay:
    """Start today's count again: ledger rows before now stop counting (they stay in the ledger)."""
    now = now or timezone.now()
    row = _day_row(utc_day(now))
    BudgetDay.objects.filter(pk=row.pk).update(reset_at=now)
    Provider.objects.filter(retired_on=utc_day(now)).update(retired_on=None, retired_reason="")
    row.refresh_from_db()
    return row


def provider_record_call(
    *, provider: Provider, request_id: str, ok: bool, error: str = "", latency_ms: float = 0.0,
    now: datetime | None = None,
) -> None:  # fmt: skip
    """Log an attempt; retire the provider for the day if its recent success rate or its spend says so."""
    now = now or timezone.now()
    ProviderCall.objects.create(
        provider=provider, request_id=request_id, ok=ok, error=error[:300], latency_ms=latency_ms, created_at=now
    )
    recent = list(ProviderCall.objects.filter(provider=provider).values_list("ok", flat=True)[:RETIRE_WINDOW])
    reason = ""
    if len(recent) >= RETIRE_WINDOW and sum(recent) / len(recent) < RETIRE_MIN_SUCCESS:
        reason = f"success rate {sum(recent)}/{len(recent)} over the last {RETIRE_WINDOW} calls"
    else:
        day = utc_day(now)
        spent = _sum(LedgerEntry.objects.filter(provider=provider, day=day), "cost_usd")
        if spent >= policy_get().daily_pool_usd:
            reason = f"spent {spent.normalize()} today, the whole daily pool"
    if reason:
        Provider.objects.filter(pk=provider.pk).update(retired_on=utc_day(now), retired_reason=reason)
        log.warning("provider %s retired for the day: %s", provider.name, reason)
