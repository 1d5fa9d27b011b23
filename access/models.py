"""API keys: stored as SHA-256 digests; the key itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models

KEY_PREFIX = "sk-swarm-"


def hash_key(raw: str) -> str:
    # Keys are 256 random bits: a plain digest is enough (no dictionary to attack).
    return hashlib.sha256(raw.encode()).hexdigest()


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKey(models.Model):
    name = models.CharField(max_length=100, help_text="who uses it")
    prefix = models.CharField(max_length=16, help_text="first characters, to recognise a key in logs")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    rate_limit_per_minute = models.PositiveIntegerField(default=60, help_text="0: no limit")
    max_concurrent = models.PositiveIntegerField(
        default=4, help_text="requests of this key answered at once (generations, streams); 0: no limit"
    )
    daily_budget_usd = models.DecimalField(
        max_digits=14, decimal_places=8, null=True, blank=True, help_text="cloud spend per UTC day; empty: no key cap"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"

    @property
    def is_authenticated(self) -> bool:
        """A key stands in for the user in DRF's request.user."""
        return True
