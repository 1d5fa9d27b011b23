"""The schedule registry in admin: list and inspect only, with the GPU lock's holder on top."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse

from arbiter import lock
from arbiter.models import ScheduledJob
from swarm_site.redis_client import REDIS_ERRORS


def lock_summary() -> tuple[int, str]:
    """(message level, text) describing the GPU lock now."""
    try:
        current = lock.status()
    except REDIS_ERRORS as exc:
        return messages.WARNING, f"GPU lock status unavailable (Redis: {exc})."
    return (messages.WARNING if current.held else messages.INFO), current.summary()


@admin.register(ScheduledJob)
class ScheduledJobAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "schedule", "owner", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "owner", "notes")
    readonly_fields = ("name", "kind", "cron", "when", "owner", "notes", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScheduledJob | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ScheduledJob | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        level, text = lock_summary()
        self.message_user(request, text, level=level)
        return super().changelist_view(request, extra_context)
