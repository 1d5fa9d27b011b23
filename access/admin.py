from django import forms
from django.contrib import admin, messages

from access.key_cache import key_changed_here
from access.models import ApiKey, hash_key, new_raw_key


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "rate_limit_per_minute", "max_concurrent", "daily_budget_usd", "revoked")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "created_at", "last_used_at", "rate_limit_per_minute", "max_concurrent",
                    "daily_budget_usd", "revoked")  # fmt: skip
    list_filter = ("revoked",)
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if not change:
            raw = new_raw_key()
            obj.prefix, obj.digest = raw[:12], hash_key(raw)
            messages.warning(request, f"New key for {obj.name} (shown only now, copy it): {raw}")
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        queryset.update(revoked=True)
        key_changed_here()  # an update sends no save signal
