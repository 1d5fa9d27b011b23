"""Reservation, settlement, caps, the retry chain and retirement, against a real HTTP provider on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from budget.cloud import SYSTEM_PROMPT, CloudUnavailable, cloud_answer
from budget.models import LedgerEntry, Provider, Reservation
from budget.pricing import prompt_token_bound
from budget.selectors import budget_allows_paid_work, budget_status
from budget.services import BudgetExceeded, BudgetExhausted, budget_release, budget_reserve, budget_settle
from tests.fake_provider import FakeProvider

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("only_test_providers", "cloud_on")]

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ask(request_id: str = "r1", prompt: str = "What is the capital of Australia?", now=NOON, **kw):
    return cloud_answer(request_id=request_id, prompt=prompt, max_tokens=kw.pop("max_tokens", 50),
                        temperature=0.0, now=now)  # fmt: skip


def test_the_seed_drill_a_call_over_the_cap_aborts_before_any_paid_call(fake, make_provider, policy):
    policy(cap="0.02", pool="0.10")
    # $0.05 for one call: 50 000 $/M tokens on 1 output token is enough, whatever the prompt
    make_provider(fake.base_url, price_in="0", price_out=str(Decimal("0.05") / 50 * 1_000_000))
    with pytest.raises(BudgetExceeded, match=r"cost per request exceeded 0\.02"):
        ask()
    assert fake.calls == 0 and Reservation.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_a_paid_answer_is_settled_at_the_reported_usage(fake, make_provider, policy):
    policy()
    provider = make_provider(fake.base_url, price_in="1.00", price_out="2.00")
    result = ask()
    assert result["answer"] == "Canberra" and result["route"] == "cloud" and result["provider"] == "fake"
    entry = LedgerEntry.objects.get()
    assert (entry.prompt_tokens, entry.completion_tokens) == (20, 5)
    assert entry.cost_usd == Decimal("0.00003000") == provider.cost(20, 5)
    assert result["cost_usd"] == pytest.approx(0.00003)
    assert entry.reserved_usd == provider.cost(prompt_token_bound(fake.requests[0]["messages"]), 50)
    assert Reservation.objects.get().state == Reservation.State.SETTLED


def test_a_redelivered_request_is_not_paid_twice(fake, make_provider, policy):
    policy()
    make_provider(fake.base_url)
    first, second = ask("same"), ask("same")
    assert first["answer"] == second["answer"] and fake.calls == 1 and LedgerEntry.objects.count() == 1


def test_when_the_pool_is_spent_calls_are_blocked_until_reset(fake, make_provider, policy):
    provider = make_provider(fake.base_url, price_in="1.00", price_out="2.00")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "q"}]
    one_call = provider.cost(prompt_token_bound(messages), 50)
    policy(cap="0.02", pool=str(one_call))
    fake.usage = None  # bill exactly the reserved worst case
    ask("a", prompt="q", now=None)
    with pytest.raises(BudgetExhausted):
        ask("b", prompt="q", now=None)
    assert fake.calls == 1 and not budget_allows_paid_work() and budget_status()["spent_usd"] == one_call

    call_command("budget_reset")
    assert budget_allows_paid_work() and budget_status()["spent_usd"] == 0
    assert ask("c", prompt="q", now=None)["answer"] == "Canberra"
    assert LedgerEntry.objects.count() == 2  # the reset keeps the ledger


def test_requests_straddling_midnight_count_in_exactly_one_day(fake, make_provider, policy):
    policy()
    provider = make_provider(fake.base_url)
    before = datetime(2026, 11, 23, 23, 59, 59, 900000, tzinfo=UTC)
    after = before + timedelta(seconds=1)
    held = budget_reserve(request_id="m1", provider=provider, amount=Decimal("0.001"), now=before).reservation
    entry = budget_settle(reservation=held, prompt_tokens=10, completion_tokens=10, answer="x", now=after)
    assert entry.day == before.date()
    assert budget_status(before)["spent_usd"] == entry.cost_usd
    assert budget_status(after)["spent_usd"] == 0
    assert LedgerEntry.objects.filter(request_id="m1").count() == 1


def test_release_returns_the_hold_and_is_idempotent(make_provider, policy):
    policy(pool="0.01")
    provider = make_provider("http://127.0.0.1:9/v1")
    held = budget_reserve(request_id="h", provider=provider, amount=Decimal("0.01"), now=NOON).reservation
    with pytest.raises(BudgetExhausted):
        budget_reserve(request_id="h2", provider=provider, amount=Decimal("0.001"), now=NOON)
    budget_release(reservation=held)
    budget_release(reservation=held)
    assert budget_reserve(request_id="h2", provider=provider, amount=Decimal("0.01"), now=NOON).created


@pytest.mark.parametrize("failure", [429, 500, 503, "truncate"])
def test_a_failing_provider_hands_over_to_the_next(failure, make_provider, policy):
    policy()
    with FakeProvider(answer="from-first") as first, FakeProvider(answer="from-second") as second:
        first.failures.append(failure)
        make_provider(first.base_url, name="first", order=1)
        make_provider(second.base_url, name="second", order=2)
        result = ask()
        assert result["answer"] == "from-second" and result["provider"] == "second" and result["attempts"] == 2
        assert first.calls == 1 and second.calls == 1
    assert LedgerEntry.objects.get().provider.name == "second"
    assert set(Reservation.objects.values_list("state", flat=True)) == {"released", "settled"}


def test_a_timeout_hands_over_to_the_next(make_provider, policy):
    policy()
    with FakeProvider(delay_s=2.0) as slow, FakeProvider(answer="quick") as quick:
        make_provider(slow.base_url, name="slow", order=1, timeout_s=0.3)
        make_provider(quick.base_url, name="quick", order=2)
        assert ask()["answer"] == "quick"


def test_every_provider_failing_is_unavailable_and_costs_nothing(fake, make_provider, policy):
    policy()
    make_provider(fake.base_url)
    fake.failures.extend([500])
    with pytest.raises(CloudUnavailable, match="HTTP 500"):
        ask()
    assert LedgerEntry.objects.count() == 0 and budget_status(NOON)["held_usd"] == 0


def test_a_provider_failing_nine_times_in_ten_is_retired_for_the_day(fake, make_provider, policy):
    policy()
    provider = make_provider(fake.base_url)
    fake.failures.extend([500] * 10)
    for i in range(10):
        with pytest.raises(CloudUnavailable):
            ask(f"f{i}")
    provider.refresh_from_db()
    assert provider.retired_on == NOON.date() and "success rate 0/10" in provider.retired_reason
    with pytest.raises(CloudUnavailable, match="no cloud provider"):
        ask("after")
    assert fake.calls == 10


def test_a_provider_whose_spend_reaches_the_pool_is_retired(fake, make_provider, policy):
    policy(cap="0.02", pool="0.0003")
    provider = make_provider(fake.base_url, price_in="1.00", price_out="2.00")
    fake.usage = (100, 100)  # 0.0003
    ask()
    provider.refresh_from_db()
    assert provider.retired_on == NOON.date() and "daily pool" in provider.retired_reason


def test_cloud_off_means_no_call(fake, make_provider, policy, settings):
    settings.SWARM_CLOUD_ENABLED = False
    policy()
    make_provider(fake.base_url)
    with pytest.raises(CloudUnavailable, match="SWARM_CLOUD_ENABLED"):
        ask()
    assert fake.calls == 0


def test_a_provider_without_its_key_is_skipped(fake, make_provider, policy, monkeypatch):
    policy()
    make_provider(fake.base_url)
    monkeypatch.delenv("SWARM_TEST_PROVIDER_KEY")
    with pytest.raises(CloudUnavailable):
        ask()
    assert fake.calls == 0


def test_keys_are_never_stored(make_provider):
    provider = make_provider("http://127.0.0.1:9/v1")
    stored = Provider.objects.filter(pk=provider.pk).values().get()
    assert "test-key" not in str(stored)


def test_a_key_with_its_own_daily_budget_is_capped_inside_the_pool(fake, make_provider, policy):
    from access.services import api_key_create

    policy(cap="0.02", pool="0.10")
    provider = make_provider(fake.base_url, price_in="1.00", price_out="2.00")
    fake.usage = None  # bill the whole reservation
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "q"}]
    one_call = provider.cost(prompt_token_bound(messages), 50)
    key = api_key_create(name="small", daily_budget_usd=one_call).key
    first = cloud_answer(request_id="k1", prompt="q", max_tokens=50, temperature=0.0, now=NOON, api_key_id=key.pk)
    assert first["answer"] == "Canberra"
    with pytest.raises(BudgetExhausted, match=r"daily budget .* of key 'small'"):
        cloud_answer(request_id="k2", prompt="q", max_tokens=50, temperature=0.0, now=NOON, api_key_id=key.pk)
    # the pool itself still has room for other clients
    assert ask("other", prompt="q")["answer"] == "Canberra" and fake.calls == 2
    assert LedgerEntry.objects.get(request_id="k1").api_key_id == key.pk
