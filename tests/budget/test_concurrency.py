"""100 requests that each need a paid call, released together, against a pool with room for exactly K.

Runs on the default test database (SQLite) in `make test`, and again on PostgreSQL
(`pytest -m concurrency` with DATABASE_URL pointing at the local server), also from `make test`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from budget.cloud import SYSTEM_PROMPT, CloudUnavailable, cloud_answer
from budget.models import LedgerEntry
from budget.pricing import prompt_token_bound
from budget.services import BudgetError
from tests.fake_provider import FakeProvider

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("only_test_providers", "cloud_on")]  # fmt: skip

REQUESTS = 100
ROUNDS = 20
K = 7
MAX_TOKENS = 40
PROMPT = "Which is the largest moon of Saturn?"


def release_together(n: int, target) -> list:
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = target(i)
        except (BudgetError, CloudUnavailable) as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_exactly_k_paid_calls_and_zero_overspend(make_provider, policy):
    with FakeProvider(usage=None) as server:  # every call billed at exactly its reserved worst case
        provider = make_provider(server.base_url, price_in="3.00", price_out="15.00")
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": PROMPT}]
        one_call = provider.cost(prompt_token_bound(messages), MAX_TOKENS)
        pool = one_call * K
        policy(cap="0.02", pool=str(pool))

        for round_no in range(ROUNDS):
            day = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=round_no)
            calls_before = server.calls
            outcomes = release_together(REQUESTS, lambda i, d=day, r=round_no: cloud_answer(
                request_id=f"r{r}-{i}", prompt=PROMPT, max_tokens=MAX_TOKENS, temperature=0.0, now=d))  # fmt: skip

            paid = [o for o in outcomes if isinstance(o, dict)]
            refused = [o for o in outcomes if isinstance(o, (BudgetError, CloudUnavailable))]
            assert len(paid) == K and len(refused) == REQUESTS - K, (round_no, outcomes)
            assert server.calls - calls_before == K
            spent = LedgerEntry.objects.filter(day=day.date()).aggregate(t=Sum("cost_usd"))["t"] or Decimal(0)
            assert spent <= pool
            reported = sum(provider.cost(*server.usage_for(body)) for body in server.requests[calls_before:])
            assert spent == reported == pool
