from __future__ import annotations

from decimal import Decimal

import pytest

from budget.models import BudgetPolicy, Provider
from tests.fake_provider import FakeProvider

KEY_ENV = "SWARM_TEST_PROVIDER_KEY"


@pytest.fixture
def fake():
    with FakeProvider() as server:
        yield server


@pytest.fixture
def make_provider(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "test-key")

    def make(base_url: str, *, name: str = "fake", price_in: str = "1.00", price_out: str = "2.00", order: int = 1,
             **fields) -> Provider:  # fmt: skip
        return Provider.objects.create(
            name=name, base_url=base_url, model="fake-model", api_key_env=KEY_ENV,
            price_input_per_mtok=Decimal(price_in), price_output_per_mtok=Decimal(price_out), order=order,
            timeout_s=fields.pop("timeout_s", 5.0), **fields,
        )  # fmt: skip

    return make


@pytest.fixture
def only_test_providers(db):
    """The migration's default chain points at real clouds: out of the way in tests."""
    Provider.objects.all().delete()


@pytest.fixture
def policy(db):
    def set_policy(cap: str = "0.02", pool: str = "0.10") -> BudgetPolicy:
        BudgetPolicy.objects.update_or_create(
            pk=1, defaults={"per_request_cap_usd": Decimal(cap), "daily_pool_usd": Decimal(pool)}
        )
        return BudgetPolicy.objects.get(pk=1)

    return set_policy


@pytest.fixture
def cloud_on(settings):
    settings.SWARM_CLOUD_ENABLED = True
