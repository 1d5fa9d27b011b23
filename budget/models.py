"""Cloud providers, the budget policy, reservations and the ledger.

Spend is derived from the ledger: one row per settled paid call. Reservations hold the worst-case
cost of calls in flight; the check "ledger spend + held reservations + this call <= pool" and the
new reservation happen in one transaction holding the day's row lock (see budget/services.py).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

USD = {"max_digits": 14, "decimal_places": 8}


class Provider(models.Model):
    name = models.CharField(max_length=64, unique=True)
    base_url = models.URLField(help_text="OpenAI-compatible API root, e.g. https://api.openai.com/v1")
    model = models.CharField(max_length=128)
    api_key_env = models.CharField(
        max_length=64, help_text="Name of the environment variable holding the key (the key itself is never stored)"
    )
    price_input_per_mtok = models.DecimalField(**USD, help_text="USD per 1M prompt tokens")
    price_output_per_mtok = models.DecimalField(**USD, help_text="USD per 1M completion tokens")
    order = models.PositiveIntegerField(default=100, help_text="Position in the retry chain (lowest first)")
    enabled = models.BooleanField(default=True)
    timeout_s = models.FloatField(default=30.0)
    retired_on = models.DateField(null=True, blank=True, help_text="Retired for this UTC day")
    retired_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        raw = (self.price_input_per_mtok * prompt_tokens + self.price_output_per_mtok * completion_tokens) / 1_000_000
        return raw.quantize(Decimal("0.00000001"))


class BudgetPolicy(models.Model):
    """One row (pk=1): the caps every paid call is checked against."""

    per_request_cap_usd = models.DecimalField(**USD, default=Decimal("0.02"))
    daily_pool_usd = models.DecimalField(**USD, default=Decimal("0.10"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "budget policy"

    def __str__(self) -> str:
        return f"cap ${self.per_request_cap_usd}/request, pool ${self.daily_pool_usd}/day"


class BudgetDay(models.Model):
    """A UTC day. Its row is the lock reservations take; `reset_at` restarts the day's count."""

    day = models.DateField(unique=True)
    reset_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return str(self.day)


class Reservation(models.Model):
    class State(models.TextChoices):
        HELD = "held"
        SETTLED = "settled"
        RELEASED = "released"

    key = models.CharField(max_length=128, unique=True, help_text="request id + provider: idempotency key")
    request_id = models.CharField(max_length=64, db_index=True)
    day = models.DateField(db_index=True)
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT)
    api_key = models.ForeignKey("access.ApiKey", null=True, blank=True, on_delete=models.PROTECT)
    amount_usd = models.DecimalField(**USD)
    state = models.CharField(max_length=16, choices=State.choices, default=State.HELD)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["day", "state"])]


class LedgerEntry(models.Model):
    reservation = models.OneToOneField(Reservation, on_delete=models.PROTECT, related_name="ledger")
    request_id = models.CharField(max_length=64, db_index=True)
    day = models.DateField(db_index=True)
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT)
    api_key = models.ForeignKey("access.ApiKey", null=True, blank=True, on_delete=models.PROTECT)
    prompt_tokens = models.PositiveIntegerField()
    completion_tokens = models.PositiveIntegerField()
    cost_usd = models.DecimalField(**USD)
    reserved_usd = models.DecimalField(**USD)
    answer = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ledger entries"


class ProviderCall(models.Model):
    """Every attempt at a provider, paid or not: the success rate that retires a failing provider."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="calls")
    request_id = models.CharField(max_length=64)
    ok = models.BooleanField()
    error = models.CharField(max_length=300, blank=True)
    latency_ms = models.FloatField(default=0.0)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
