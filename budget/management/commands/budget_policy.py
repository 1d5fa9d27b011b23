"""python manage.py budget_policy [--cap USD] [--pool USD]: show or change the caps."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from budget.management.commands.budget_provider import _usd
from budget.selectors import budget_status
from budget.services import policy_get


class Command(BaseCommand):
    help = "Show or change the per-request cap and the daily pool (USD)."

    def add_arguments(self, parser):
        parser.add_argument("--cap", type=_usd, help="per-request cap")
        parser.add_argument("--pool", type=_usd, help="daily pool (UTC day)")

    def handle(self, *args, cap, pool, **opts):
        policy = policy_get()
        if cap is not None:
            policy.per_request_cap_usd = cap
        if pool is not None:
            policy.daily_pool_usd = pool
        policy.save()
        status = budget_status()
        self.stdout.write(f"{policy}; today spent {status['spent_usd']}, remaining {status['remaining_usd']}")
