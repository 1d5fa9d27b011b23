"""Live numbers for the chat page's metrics panel: GET /api/stats.

Requests by route and the cache hit ratio come from the interaction log of the last 24 hours;
spend today, what is left and the pool come from the budget (the UTC day's ledger).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budget.selectors import budget_status
from routing.models import Interaction

WINDOW = timedelta(hours=24)


def interaction_stats(since: datetime) -> dict[str, Any]:
    """Requests logged at or after `since`: {"requests", "cached", "requests_by_route", "cache_hit_ratio"}."""
    rows = Interaction.objects.filter(created_at__gte=since)
    by_route = {row["route"]: row["n"] for row in rows.values("route").annotate(n=Count("id")).order_by("-n", "route")}
    requests = sum(by_route.values())
    cached = rows.filter(cached=True).count() if requests else 0
    return {
        "requests": requests,
        "cached": cached,
        "requests_by_route": by_route,
        "cache_hit_ratio": round(cached / requests, 4) if requests else 0.0,
    }


def gateway_stats(now: datetime | None = None) -> dict[str, Any]:
    """What GET /api/stats answers: the last 24 hours of traffic and today's budget."""
    now = now or timezone.now()
    traffic = interaction_stats(now - WINDOW)
    budget = budget_status(now)
    return {
        "requests_by_route": traffic["requests_by_route"],
        "cache_hit_ratio": traffic["cache_hit_ratio"],
        "requests": traffic["requests"],
        "spend_today_usd": float(budget["spent_usd"]),
        "remaining_today_usd": float(budget["remaining_usd"]),
        "pool_usd": float(budget["pool_usd"]),
    }


class StatsView(APIView):
    """GET /api/stats: requests by route and cache hit ratio (last 24 h), spend today, what is left.

    Under the API's access policy (a key, or the anonymous loopback caller): it shows spend.
    """

    def get(self, request: Request) -> Response:
        return Response(gateway_stats(), headers={"Cache-Control": "no-store"})
