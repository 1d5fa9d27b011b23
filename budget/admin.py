import os

from django.contrib import admin, messages
from django.db import models
from django.db.models import Sum

from budget.models import BudgetDay, BudgetPolicy, LedgerEntry, Provider, ProviderCall, Reservation
from budget.selectors import budget_status
from budget.services import budget_reset, held_on, spent_on, utc_day


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "model", "order", "enabled", "state", "key_present", "spend_today",
                    "price_input_per_mtok", "price_output_per_mtok")  # fmt: skip
    list_editable = ("order", "enabled")
    readonly_fields = ("retired_on", "retired_reason")
    actions = ["unretire"]

    @admin.display(description="state")
    def state(self, obj):
        if not obj.enabled:
            return "disabled"
        if obj.retired_on == utc_day():
            return f"retired today: {obj.retired_reason}"
        return "active"

    @admin.display(boolean=True, description="key set")
    def key_present(self, obj):
        return bool(os.environ.get(obj.api_key_env))

    @admin.display(description="spend today (USD)")
    def spend_today(self, obj):
        return LedgerEntry.objects.filter(provider=obj, day=utc_day()).aggregate(t=Sum("cost_usd"))["t"] or 0

    @admin.action(description="Bring back retired providers")
    def unretire(self, request, queryset):
        queryset.update(retired_on=None, retired_reason="")


@admin.register(BudgetPolicy)
class BudgetPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "per_request_cap_usd", "daily_pool_usd", "spent_today", "remaining_today")

    def has_add_permission(self, request):
        return not BudgetPolicy.objects.exists()

    @admin.display(description="spent today (USD)")
    def spent_today(self, obj):
        return budget_status()["spent_usd"]

    @admin.display(description="remaining today (USD)")
    def remaining_today(self, obj):
        return budget_status()["remaining_usd"]


@admin.register(BudgetDay)
class BudgetDayAdmin(admin.ModelAdmin):
    list_display = ("day", "spent", "held", "remaining", "reset_at")
    readonly_fields = ("day", "reset_at")
    actions = ["reset_today"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="spent (USD, from the ledger)")
    def spent(self, obj):
        return spent_on(obj)

    @admin.display(description="held (USD)")
    def held(self, obj):
        return held_on(obj.day)

    @admin.display(description="remaining (USD)")
    def remaining(self, obj):
        return budget_status()["remaining_usd"] if obj.day == utc_day() else "-"

    @admin.action(description="Reset today's budget")
    def reset_today(self, request, queryset):
        row = budget_reset()
        self.message_user(request, f"Budget for {row.day} reset at {row.reset_at:%H:%M:%S} UTC", messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        status = budget_status()
        self.message_user(
            request,
            f"Today ({status['day']}): spent ${status['spent_usd']:.4f}, held ${status['held_usd']:.4f}, "
            f"remaining ${status['remaining_usd']:.4f} of ${status['pool_usd']:.4f}",
            messages.INFO,
        )
        return super().changelist_view(request, extra_context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "day", "provider", "request_id", "prompt_tokens", "completion_tokens",
                    "cost_usd", "reserved_usd")  # fmt: skip
    list_filter = ("day", "provider")
    search_fields = ("request_id",)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "day", "provider", "request_id", "amount_usd", "state")
    list_filter = ("state", "day", "provider")


@admin.register(ProviderCall)
class ProviderCallAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "provider", "request_id", "ok", "latency_ms", "error")
    list_filter = ("ok", "provider")
