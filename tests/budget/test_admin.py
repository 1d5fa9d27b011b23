"""The budget in Django admin: spend today, remaining pool, read-only ledger, provider states, reset."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budget.models import BudgetDay, LedgerEntry, Reservation
from budget.services import budget_reserve, budget_settle, utc_day

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("only_test_providers")]


@pytest.fixture
def spent_today(make_provider, policy):
    policy(cap="0.02", pool="0.10")
    provider = make_provider("http://127.0.0.1:9/v1", price_in="100", price_out="100")
    held = budget_reserve(request_id="adm", provider=provider, amount=Decimal("0.02")).reservation
    return budget_settle(reservation=held, prompt_tokens=100, completion_tokens=100, answer="a")  # $0.02


def test_budget_day_page_shows_spend_and_remaining(admin_client, spent_today):
    page = admin_client.get("/admin/budget/budgetday/").content.decode()
    assert "spent $0.02" in page and "remaining $0.08" in page and "of $0.10" in page


def test_providers_show_their_state(admin_client, make_provider):
    make_provider("http://127.0.0.1:9/v1", name="healthy")
    make_provider("http://127.0.0.1:9/v1", name="tired", order=2, retired_on=utc_day(),
                  retired_reason="success rate 0/10")  # fmt: skip
    page = admin_client.get("/admin/budget/provider/").content.decode()
    assert "active" in page and "retired today: success rate 0/10" in page


def test_the_ledger_is_read_only(admin_client, spent_today):
    assert admin_client.get("/admin/budget/ledgerentry/").status_code == 200
    assert admin_client.get("/admin/budget/ledgerentry/add/").status_code == 403
    change = admin_client.post(f"/admin/budget/ledgerentry/{spent_today.pk}/change/", {"cost_usd": "0"})
    assert change.status_code == 403
    assert LedgerEntry.objects.get().cost_usd == Decimal("0.02")


def test_the_reset_action_frees_the_pool(admin_client, spent_today):
    day = BudgetDay.objects.get(day=utc_day())
    response = admin_client.post("/admin/budget/budgetday/", {"action": "reset_today", "_selected_action": [day.pk]},
                                 follow=True)  # fmt: skip
    assert "reset at" in response.content.decode()
    page = admin_client.get("/admin/budget/budgetday/").content.decode()
    assert "spent $0" in page and "remaining $0.10" in page
    assert LedgerEntry.objects.count() == 1 and Reservation.objects.count() == 1


def test_admin_pages_render(admin_client, spent_today):
    for path in ("/admin/budget/budgetpolicy/", "/admin/budget/reservation/", "/admin/budget/providercall/",
                 "/admin/routing/interaction/"):  # fmt: skip
        assert admin_client.get(path).status_code == 200, path
