from django.contrib import admin

from routing.models import Interaction


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "route", "skill_type", "confidence", "latency_ms", "cost_usd", "cached", "status")
    list_filter = ("route", "skill_type", "cached", "status", "model")
    search_fields = ("request_id", "prompt", "answer")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["ballots"]

    def has_add_permission(self, request):
        return False
