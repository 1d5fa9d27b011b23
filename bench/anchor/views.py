"""The anchor's one view: POST {"prompt"} (JSON, like our API) -> one Redis GET -> the value as JSON."""

from __future__ import annotations

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# One client (and connection pool) per process, short timeouts, as swarm_site/redis_client.py does.
_redis = redis.Redis.from_url(settings.ANCHOR_REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)


def _answer() -> str | None:
    value = _redis.get(settings.ANCHOR_KEY)
    return value.decode() if value is not None else None


class AnswerView(APIView):
    """POST /answer {"prompt": "..."} -> {"answer", "prompt", "cached"}; GET /answer: the same lookup
    (the readiness probe)."""

    def post(self, request: Request) -> Response:
        prompt = request.data.get("prompt") if isinstance(request.data, dict) else None
        if not isinstance(prompt, str) or not prompt:
            return Response({"error": {"message": "prompt: a non-empty string is required"}}, status=400)
        answer = _answer()
        return Response({"answer": answer, "prompt": prompt, "cached": answer is not None})

    def get(self, request: Request) -> Response:
        answer = _answer()
        return Response({"answer": answer, "cached": answer is not None})
