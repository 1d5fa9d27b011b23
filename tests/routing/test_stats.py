"""GET /api/stats and the chat page: the numbers of the live metrics panel, from the database."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import resolve
from rest_framework.test import APIRequestFactory

from access.services import api_key_create
from budget.models import BudgetDay, BudgetPolicy, LedgerEntry, Provider, Reservation
from budget.services import utc_day
from routing.models import Interaction
from routing.pages import ChatPageView
from routing.stats import StatsView, gateway_stats, interaction_stats

NOW = datetime.now(UTC)
KEYS = {"requests_by_route", "cache_hit_ratio", "requests", "spend_today_usd", "remaining_today_usd", "pool_usd"}


def interaction(route: str, *, cached: bool = False, age: timedelta = timedelta(minutes=5)) -> Interaction:
    return Interaction.objects.create(request_id=uuid.uuid4().hex, created_at=NOW - age, prompt="p", answer="a",
                                      route=route, cached=cached)  # fmt: skip


def paid_call(cost: str, *, state: str = Reservation.State.SETTLED) -> None:
    provider, _ = Provider.objects.get_or_create(
        name="stats-test", defaults={"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "UNSET_KEY",
                                     "price_input_per_mtok": Decimal(1), "price_output_per_mtok": Decimal(2)},
    )  # fmt: skip
    BudgetDay.objects.get_or_create(day=utc_day())  # the day's row, as a reservation makes it
    request_id = uuid.uuid4().hex
    reservation = Reservation.objects.create(key=f"{request_id}:{provider.pk}", request_id=request_id, day=utc_day(),
                                             provider=provider, amount_usd=Decimal(cost), state=state,
                                             created_at=NOW)  # fmt: skip
    if state == Reservation.State.SETTLED:
        LedgerEntry.objects.create(reservation=reservation, request_id=request_id, day=utc_day(), provider=provider,
                                   prompt_tokens=10, completion_tokens=10, cost_usd=Decimal(cost),
                                   reserved_usd=Decimal(cost), created_at=NOW)  # fmt: skip


@pytest.fixture
def pool(db) -> None:
    BudgetPolicy.objects.update_or_create(pk=1, defaults={"per_request_cap_usd": Decimal("0.02"),
                                                          "daily_pool_usd": Decimal("0.10")})  # fmt: skip


@pytest.mark.django_db
def test_no_traffic_is_all_zeros():
    assert interaction_stats(NOW - timedelta(hours=24)) == {
        "requests": 0, "cached": 0, "requests_by_route": {}, "cache_hit_ratio": 0.0}  # fmt: skip


@pytest.mark.django_db
def test_routes_are_counted_and_the_hit_ratio_is_cached_over_all_since_the_cutoff():
    for _ in range(3):
        interaction("council")
    interaction("cache", cached=True)
    interaction("unsure")
    interaction("cloud", age=timedelta(hours=25))  # before the window
    interaction("cache", cached=True, age=timedelta(hours=30))

    stats = interaction_stats(NOW - timedelta(hours=24))

    assert stats["requests_by_route"] == {"council": 3, "cache": 1, "unsure": 1}
    assert list(stats["requests_by_route"]) == ["council", "cache", "unsure"]  # busiest first
    assert stats["requests"] == 5 and stats["cached"] == 1 and stats["cache_hit_ratio"] == pytest.approx(0.2)
    assert interaction_stats(NOW - timedelta(hours=48))["requests_by_route"]["cache"] == 2


@pytest.mark.django_db
def test_gateway_stats_joins_traffic_and_todays_budget(pool):
    interaction("council")
    interaction("cache", cached=True)
    paid_call("0.03")
    paid_call("0.01", state=Reservation.State.HELD)  # in flight: not spent, but not available either

    stats = gateway_stats()

    assert set(stats) == KEYS
    assert stats["requests"] == 2 and stats["cache_hit_ratio"] == pytest.approx(0.5)
    assert stats["spend_today_usd"] == pytest.approx(0.03)
    assert stats["remaining_today_usd"] == pytest.approx(0.06)
    assert stats["pool_usd"] == pytest.approx(0.10)


@pytest.mark.django_db
def test_the_endpoint_answers_json_to_a_key(pool, api_redis):
    interaction("council")
    interaction("cache", cached=True)
    interaction("cache", cached=True)
    paid_call("0.025")
    key = api_key_create(name="stats").raw
    factory = APIRequestFactory()

    refused = StatsView.as_view()(factory.get("/api/stats", REMOTE_ADDR="10.1.2.3"))  # spend is not public
    assert refused.status_code == 401
    response = StatsView.as_view()(factory.get("/api/stats", REMOTE_ADDR="10.1.2.3",
                                               HTTP_AUTHORIZATION=f"Bearer {key}"))  # fmt: skip
    response.render()

    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "no-store"
    body = response.data
    assert set(body) == KEYS
    assert body["requests_by_route"] == {"cache": 2, "council": 1} and body["requests"] == 3
    assert body["cache_hit_ratio"] == pytest.approx(2 / 3, abs=1e-4)
    assert body["spend_today_usd"] == pytest.approx(0.025) and body["remaining_today_usd"] == pytest.approx(0.075)
    assert all(isinstance(body[k], float) for k in ("cache_hit_ratio", "spend_today_usd", "remaining_today_usd",
                                                   "pool_usd"))  # fmt: skip


@pytest.mark.django_db
def test_the_chat_page_is_self_contained_and_names_what_the_browser_test_uses(rf):
    response = ChatPageView.as_view()(rf.get("/chat"))
    html = response.render().content.decode()

    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    for test_id in ("prompt-input", "send-button", "api-key-input", "model-select", "metrics-panel", "error"):
        assert f'data-testid="{test_id}"' in html, test_id
    for endpoint in ('"/v1/chat/completions"', '"/v1/models"', '"/api/stats"'):
        assert endpoint in html
    assert '<option value="swarm-auto">swarm-auto</option>' in html
    # No CDN, no web fonts: nothing is loaded from another host.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "@import" not in html
    # Every form control has a label.
    for control in re.findall(r'<(?:input|textarea|select)[^>]*\bid="([^"]+)"', html):
        assert f'<label for="{control}"' in html, control


def test_the_site_routes_the_chat_page_and_the_stats():
    assert resolve("/chat").func.view_class is ChatPageView
    assert resolve("/api/stats").func.view_class is StatsView
