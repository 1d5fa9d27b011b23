"""The schedule registry: who plans to use the GPU, when. A record, not a scheduler.

Entries say which recurring or one-off jobs (nightly LoRA runs, mining) will want the GPU lock,
so an operator sees in admin who may be holding it and why. Nothing here runs them (beat and the
trainer do); the API writes entries, admin only shows them.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


def validate_cron(value: str) -> None:
    """Five fields (minute hour day-of-month month day-of-week), as celery's crontab reads them."""
    from celery.schedules import ParseException, crontab

    fields = value.split()
    if len(fields) != 5:
        raise ValidationError("cron needs 5 fields: minute hour day-of-month month day-of-week")
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week)
    except (ParseException, ValueError) as exc:
        raise ValidationError(f"invalid cron expression: {exc}") from None


class ScheduledJob(models.Model):
    class Kind(models.TextChoices):
        LORA_NIGHTLY = "lora-nightly", "LoRA nightly"
        LORA = "lora", "LoRA (ad hoc)"
        MINING = "mining", "Pattern mining"
        SWAP = "swap", "Model swap"
        OTHER = "other", "Other"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    cron = models.CharField(max_length=100, blank=True, default="", validators=[validate_cron],
                            help_text="recurring: 5-field cron in UTC, e.g. '0 3 * * *'")  # fmt: skip
    when = models.DateTimeField(null=True, blank=True, help_text="one-off: when it runs (UTC)")
    owner = models.CharField(max_length=100)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(cron="") | models.Q(when__isnull=False), name="arbiter_job_cron_or_when"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.schedule})"

    @property
    def schedule(self) -> str:
        parts = []
        if self.cron:
            parts.append(f"cron {self.cron}")
        if self.when:
            parts.append(f"at {self.when.isoformat()}")
        return ", ".join(parts)
