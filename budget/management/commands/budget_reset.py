"""python manage.py budget_reset: start today's spend count again and un-retire today's providers."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from budget.selectors import budget_status
from budget.services import budget_reset


class Command(BaseCommand):
    help = "Reset today's (UTC) cloud spend count; the ledger keeps every row."

    def handle(self, *args, **options):
        budget_reset()
        status = budget_status()
        self.stdout.write(self.style.SUCCESS(
            f"budget reset for {status['day']}: spent {status['spent_usd']}, remaining {status['remaining_usd']} "
            f"of {status['pool_usd']}"
        ))  # fmt: skip
