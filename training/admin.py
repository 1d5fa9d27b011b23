"""Admin: queue training jobs, inspect adapter versions, run the canary (start, weight, promote, roll back)."""

from __future__ import annotations

from django.contrib import admin, messages

from training import rollout, services
from training.models import AdapterVersion, ServingState, TrainingJob


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "source", "status", "train_examples", "heldout_examples", "steps",
                    "seconds_per_step", "loss_last", "device", "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "source")
    search_fields = ("name", "detail")
    fields = ("name", "prompts", "params", "source", "status", "detail", "train_examples", "heldout_examples",
              "steps", "seconds_per_step", "loss_first", "loss_last", "device", "created_at", "started_at",
              "finished_at")  # fmt: skip
    readonly_fields = ("source", "status", "detail", "train_examples", "heldout_examples", "steps",
                       "seconds_per_step", "loss_first", "loss_last", "device", "created_at", "started_at",
                       "finished_at")  # fmt: skip
    actions = ["requeue"]

    def has_change_permission(self, request, obj=None):
        return obj is None  # a job is queued from here, then only the trainer writes it

    def save_model(self, request, obj, form, change):
        obj.source = TrainingJob.Source.ADMIN
        super().save_model(request, obj, form, change)
        services.enqueue(obj)  # "jobs queued from admin"

    @admin.action(description="Queue the selected jobs again")
    def requeue(self, request, queryset):
        for job in queryset:
            services.create_job(job.name, job.prompts, source=TrainingJob.Source.ADMIN, params=job.params)
        self.message_user(request, f"queued {queryset.count()} job(s) again")


@admin.register(AdapterVersion)
class AdapterVersionAdmin(admin.ModelAdmin):
    list_display = ("number", "status", "base_model", "rank", "alpha", "gate", "job", "created_at")
    list_filter = ("status", "base_model")
    readonly_fields = [f.name for f in AdapterVersion._meta.fields]
    actions = ["start_canary", "make_stable"]

    def has_add_permission(self, request):
        return False  # adapters come from training runs

    @admin.display(description="gate")
    def gate(self, obj):
        return obj.detail[:80]

    @admin.action(description="Start a canary with the selected adapter (default weight)")
    def start_canary(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "pick exactly one adapter", level=messages.ERROR)
            return
        try:
            state = rollout.start_canary(queryset.get())
        except rollout.RolloutError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        self.message_user(request, f"canary {state['canary']} at {state['canary_weight']}%")

    @admin.action(description="Serve the selected adapter to everyone now (hot reload)")
    def make_stable(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "pick exactly one adapter", level=messages.ERROR)
            return
        try:
            state = rollout.reload_adapter(queryset.get().version, operator=f"staff user {request.user.username!r}")
        except rollout.RolloutError as exc:  # one that failed its gate: served only by POST /admin/reload with force
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        self.message_user(request, f"serving {state['stable']} (lora version {state['lora_version']})")


@admin.register(ServingState)
class ServingStateAdmin(admin.ModelAdmin):
    list_display = ("__str__", "stable", "canary", "canary_weight", "canary_started_at", "generation", "updated_at")
    fields = ("stable", "canary", "canary_weight", "canary_started_at", "generation", "updated_at")
    readonly_fields = ("stable", "canary", "canary_started_at", "generation", "updated_at")
    actions = ["promote", "rollback", "judge"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        rollout.set_canary_weight(obj.canary_weight)  # the one editable field, through the service

    def _run(self, request, action, **kwargs):
        try:
            state = action(**kwargs)
        except rollout.RolloutError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        self.message_user(request, str(state))

    @admin.action(description="Promote the canary")
    def promote(self, request, queryset):
        self._run(request, rollout.promote_canary, why=f"promoted by {request.user}")

    @admin.action(description="Roll back the canary")
    def rollback(self, request, queryset):
        self._run(request, rollout.rollback_canary, why=f"rolled back by {request.user}")

    @admin.action(description="Judge the canary now (promote, roll back, or wait)")
    def judge(self, request, queryset):
        self._run(request, rollout.judge_canary)
