import time

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from mining import state
from mining.models import MiningRun, PatternHead
from routing.models import Interaction

MEMBERS_SHOWN = 50
_pending: tuple[float, dict[int, int]] = (0.0, {})


def _pending_hits() -> dict[int, int]:
    """Hits still in Redis (not yet flushed by a mining run), read at most every 2 s for a changelist page."""
    global _pending
    if time.monotonic() - _pending[0] > 2.0:
        _pending = (time.monotonic(), state.pending_hits())
    return _pending[1]


@admin.register(PatternHead)
class PatternHeadAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "answer_short", "support", "confidence", "threshold", "hit_count", "enabled",
                    "version", "updated_at")  # fmt: skip
    list_filter = ("enabled", "disabled_by_admin", "embedding_model")
    search_fields = ("name", "canonical_answer", "retired_reason")
    readonly_fields = ("name", "embedding_model", "centroid_info", "canonical_answer", "support", "confidence",
                       "hit_count", "sample_prompts", "members", "guard", "source_count", "retired_reason",
                       "disabled_by_admin", "version", "created_at", "updated_at")  # fmt: skip
    fields = ("name", "canonical_answer", "answer_template", "enabled", "threshold", "support", "confidence",
              "hit_count", "retired_reason", "disabled_by_admin", "version", "sample_prompts", "members", "guard",
              "source_count", "centroid_info", "embedding_model", "created_at", "updated_at")  # fmt: skip
    actions = ["disable", "enable"]

    def has_add_permission(self, request):
        return False  # heads come from mining runs

    def get_queryset(self, request):
        return super().get_queryset(request).defer("centroid")

    @admin.display(description="answer")
    def answer_short(self, obj):
        return obj.canonical_answer[:60]

    @admin.display(description="hits")
    def hit_count(self, obj):
        return obj.hits + _pending_hits().get(obj.pk, 0)

    @admin.display(description="source interactions")
    def source_count(self, obj):
        return len(obj.source_interaction_ids)

    @admin.display(description="centroid")
    def centroid_info(self, obj):
        vector = obj.centroid_vector()
        return f"{vector.shape[0]} dims, norm {float((vector**2).sum()) ** 0.5:.4f}"

    @admin.display(description="guard (slots of the members)")
    def guard(self, obj):
        slots = obj.slots or {}
        rows = [(k, ", ".join(map(str, slots.get(k, []))) or "-") for k in ("keys", "entity_sets", "entity_vocab")]
        rows.append(("phrasings", len(slots.get("sequences", []))))
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description=f"members (newest {MEMBERS_SHOWN})")
    def members(self, obj):
        ids = obj.source_interaction_ids[-MEMBERS_SHOWN:]
        rows = Interaction.objects.filter(pk__in=ids).order_by("-created_at")
        cells = ((i.created_at.strftime("%Y-%m-%d %H:%M"), i.route, i.prompt[:120], i.answer[:120]) for i in rows)
        return format_html(
            "<table><tr><th>when</th><th>route</th><th>prompt</th><th>answer</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", cells),
        )

    def save_model(self, request, obj, form, change):
        if change and form.changed_data:
            obj.version += 1
            if "enabled" in form.changed_data:
                obj.disabled_by_admin = not obj.enabled
                obj.retired_reason = "" if obj.enabled else f"disabled in admin by {request.user}"
        super().save_model(request, obj, form, change)
        state.bump_version()  # every process rebuilds its index

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        state.bump_version()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        state.bump_version()

    @admin.action(description="Disable (stop answering; mining will not re-enable)")
    def disable(self, request, queryset):
        for head in queryset.filter(enabled=True):
            head.enabled = False
            head.disabled_by_admin = True
            head.retired_reason = f"disabled in admin by {request.user}"
            head.version += 1
            head.save(update_fields=["enabled", "disabled_by_admin", "retired_reason", "version", "updated_at"])
        version = state.bump_version()
        level = messages.SUCCESS if version is not None else messages.WARNING
        self.message_user(request, f"disabled; patterns version {version}", level)

    @admin.action(description="Enable again")
    def enable(self, request, queryset):
        for head in queryset.filter(enabled=False):
            head.enabled = True
            head.disabled_by_admin = False
            head.retired_reason = ""
            head.version += 1
            head.save(update_fields=["enabled", "disabled_by_admin", "retired_reason", "version", "updated_at"])
        version = state.bump_version()
        self.message_user(request, f"enabled; patterns version {version}")


@admin.register(MiningRun)
class MiningRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "status", "interactions_seen", "distinct_prompts", "clusters", "clusters_agreeing",
                    "heads_created", "heads_updated", "heads_retired", "hits_flushed", "patterns_version")  # fmt: skip
    list_filter = ("status",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False
