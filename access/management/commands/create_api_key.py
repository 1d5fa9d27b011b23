"""python manage.py create_api_key NAME [--rate N] [--concurrency N] [--daily-budget USD]: prints the key once."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from access.services import api_key_create
from budget.management.commands.budget_provider import _usd


class Command(BaseCommand):
    help = "Create an API key for a client; the key is printed once and stored only as a digest."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--rate", type=int, default=60, help="requests per minute (0: no limit)")
        parser.add_argument("--concurrency", type=int, default=4, help="requests answered at once (0: no limit)")
        parser.add_argument("--daily-budget", type=_usd, default=None, help="cloud spend cap per UTC day (USD)")

    def handle(self, *args, name: str, rate: int, concurrency: int, daily_budget, **options):
        new = api_key_create(name=name, rate_limit_per_minute=rate, max_concurrent=concurrency,
                             daily_budget_usd=daily_budget)  # fmt: skip
        self.stdout.write(new.raw)
