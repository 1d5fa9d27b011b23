"""Read-only views of the budget: spend today, what is left, provider states."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from budget.models import BudgetDay
from budget.services import held_on, policy_get, spent_on, utc_day


def budget_status(now: datetime | None = None) -> dict[str, Any]:
    day = utc_day(now)
    row = BudgetDay.objects.filter(day=day).first() or BudgetDay(day=day)
    policy = policy_get()
    spent = spent_on(row) if row.pk else Decimal("0")
    held = held_on(day)
    return {
        "day": day.isoformat(),
        "spent_usd": spent,
        "held_usd": held,
        "pool_usd": policy.daily_pool_usd,
        "remaining_usd": max(Decimal("0"), policy.daily_pool_usd - spent - held),
        "per_request_cap_usd": policy.per_request_cap_usd,
        "reset_at": row.reset_at.isoformat() if row.reset_at else None,
    }


def budget_allows_paid_work(now: datetime | None = None) -> bool:
    """False once the daily pool is spent: cloud calls and the trainer wait for the reset."""
    return budget_status(now)["remaining_usd"] > 0
