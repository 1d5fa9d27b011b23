"""HTTP endpoints: validate, call one service, shape the response."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authentication import client_address, enforce_token_cap, held_slots, is_staff
from routing import selectors, services
from routing.heads.code import public_ballots
from routing.serializers import HybridSerializer, PromptSerializer

PUBLIC_FIELDS = (
    "answer", "route", "skill_type", "confidence", "latency_ms", "cost_usd", "cached", "model", "request_id",
    "provider", "detail", "adapter_version",
)  # fmt: skip


class OrchestrateView(APIView):
    """POST /orchestrate {"prompt", "max_tokens"?, "temperature"?} -> the cascade's answer."""

    endpoint = "orchestrate"
    serializer_class = PromptSerializer
    generates = True  # holds one of the caller's concurrent generations (access/authentication.py)

    def ask(self, request: Request) -> dict[str, Any]:
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        prompt = data.get("prompt") or data.get("query")
        enforce_token_cap(request, data["max_tokens"])
        client = services.client_identity(api_key_id=getattr(request.auth, "pk", None), user=data.get("user"),
                                          address=client_address(request))  # fmt: skip
        return services.orchestrate_request(
            prompt=prompt, max_tokens=data["max_tokens"], temperature=data["temperature"], endpoint=self.endpoint,
            client=client, slots=held_slots(request),
        )  # fmt: skip

    def post(self, request: Request) -> Response:
        result = self.ask(request)
        return Response({k: result.get(k) for k in PUBLIC_FIELDS})


class VoteView(OrchestrateView):
    """POST /vote: every ballot, the scores, and the winner.

    A code ballot's raw sandbox output (stdout/stderr) is for staff only; everyone else sees the summary
    (tests passed/failed, the error type).
    """

    endpoint = "vote"

    def post(self, request: Request) -> Response:
        result = self.ask(request)
        body = {k: result.get(k) for k in PUBLIC_FIELDS}
        ballots = result.get("ballots", [])
        if not is_staff(request):
            ballots = public_ballots(ballots)
        body.update(
            ballots=ballots,
            scores=result.get("scores", {}),
            reasons=result.get("reasons", {}),
            winner=next((b for b in ballots if b["head"] == result.get("winner_head")), None),
            min_confidence=settings.SWARM_MIN_CONFIDENCE,
        )
        return Response(body)


class HybridView(OrchestrateView):
    """POST /hybrid {"query"}: the chat page's endpoint."""

    endpoint = "hybrid"
    serializer_class = HybridSerializer

    def post(self, request: Request) -> Response:
        result = self.ask(request)
        keys = ("skill_type", "confidence", "answer", "latency_ms", "route", "cost_usd", "cached", "request_id",
                "provider", "detail")  # fmt: skip
        return Response({k: result.get(k) for k in keys})


class HealthView(APIView):
    """GET /health: 200 when db, redis and at least one serving worker are up; 503 naming what is not."""

    authentication_classes: list = []  # open: load balancers and monitors probe it without a key
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request: Request) -> Response:
        report = selectors.health_report()
        return Response(report, status=200 if report["status"] == "ok" else 503)
