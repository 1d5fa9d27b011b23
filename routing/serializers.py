"""Request validation for the routing endpoints (shapes only; no logic)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from swarm_site.errors import PayloadTooLarge


class StrictCharField(serializers.CharField):
    """A string, never a number or list coerced into one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PromptSerializer(serializers.Serializer):
    prompt = StrictCharField(trim_whitespace=True, allow_blank=False)
    max_tokens = serializers.IntegerField(required=False, min_value=1)
    temperature = serializers.FloatField(required=False, min_value=0.0, max_value=2.0)
    user = serializers.CharField(required=False, allow_blank=True, max_length=256)  # sticky canary arm

    def validate_prompt(self, value: str) -> str:
        limit = settings.SWARM_MAX_PROMPT_CHARS
        if len(value) > limit:
            raise PayloadTooLarge(f"prompt has {len(value)} characters; the limit is {limit}")
        return value

    def validate_max_tokens(self, value: int) -> int:
        limit = settings.SWARM_MAX_TOKENS_LIMIT
        if value > limit:
            raise serializers.ValidationError(f"must be at most {limit}")
        return value

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        values = super().to_internal_value(data)
        values.setdefault("max_tokens", settings.SWARM_DEFAULT_MAX_TOKENS)
        values.setdefault("temperature", 0.0)
        return values


class HybridSerializer(PromptSerializer):
    """The chat page's shape: `query` instead of `prompt`."""

    prompt = None
    query = StrictCharField(trim_whitespace=True, allow_blank=False)

    def validate_query(self, value: str) -> str:
        return self.validate_prompt(value)
