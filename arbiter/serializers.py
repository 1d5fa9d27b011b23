"""Request validation for the arbiter API (400 in the project's error shape on bad input)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from arbiter.lock import MAX_TTL_S, MIN_TTL_S
from arbiter.models import ScheduledJob
from arbiter.services import swap_deadline_s
from inference.registry import RegistryError, load_registry


class LockRequestSerializer(serializers.Serializer):
    holder = serializers.CharField(max_length=200, default="api")
    ttl_s = serializers.FloatField(min_value=MIN_TTL_S, max_value=MAX_TTL_S, default=300.0)
    purpose = serializers.CharField(max_length=200, default="", allow_blank=True)


class LockReleaseSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200)


class SwapRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=200)
    worker = serializers.CharField(max_length=200, required=False, allow_blank=True)
    holder = serializers.CharField(max_length=200, default="api")
    lease_token = serializers.CharField(max_length=200, required=False)
    fencing = serializers.IntegerField(min_value=1, required=False)
    deadline_s = serializers.FloatField(min_value=1.0, required=False)

    def validate_deadline_s(self, value: float) -> float:
        limit = swap_deadline_s()
        if value > limit:
            raise serializers.ValidationError(f"at most SWARM_SWAP_DEADLINE_S ({limit:g} s)")
        return value

    def validate_model(self, value: str) -> str:
        try:
            registry = load_registry()
        except RegistryError as exc:
            raise serializers.ValidationError(f"the model registry is unusable: {exc}") from None
        if value not in registry.models:
            raise serializers.ValidationError(
                f"unknown model {value!r}; the registry has: {', '.join(sorted(registry.models))}"
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("lease_token" in attrs) != ("fencing" in attrs):
            raise serializers.ValidationError("lease_token and fencing go together (send both or neither)")
        return attrs


class ScheduledJobSerializer(serializers.ModelSerializer):
    schedule = serializers.CharField(read_only=True)

    class Meta:
        model = ScheduledJob
        fields = ["id", "name", "kind", "cron", "when", "owner", "notes", "schedule", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("cron") and not attrs.get("when"):
            raise serializers.ValidationError("give a cron expression (recurring) or when (one-off)")
        return attrs
