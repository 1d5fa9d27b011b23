"""POST /admin/reload {"lora": "latest"}: serve another adapter now, without restarting anything.

GET /admin/reload shows what serves and changes nothing. Changes are POST only, by the arbiter
token (machines, scripts) or a staff session with its CSRF token (people in the admin).
"""

from __future__ import annotations

from rest_framework import exceptions, permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbiter.auth import ArbiterClient, ArbiterTokenAuthentication
from training import rollout


class OperatorOnly(permissions.BasePermission):
    """The arbiter token or a staff session (never an anonymous caller, not even on loopback)."""

    message = "reload needs the arbiter token ('Authorization: Bearer <token>') or a staff session"

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if isinstance(user, ArbiterClient):
            return True
        if user is not None and getattr(user, "is_authenticated", False):
            if not (user.is_active and user.is_staff):
                raise exceptions.PermissionDenied("reload is for staff users only")
            return True
        raise exceptions.NotAuthenticated(self.message)


class ReloadView(APIView):
    """POST `lora=latest` (newest trained adapter), `lora=base`, `lora=lora-v3` (query or JSON body);
    none: publish the state again. GET: what serves now, nothing changed.

    Answers what serves: {"lora_version", "stable", "canary", "canary_weight"}.
    """

    authentication_classes = [ArbiterTokenAuthentication, SessionAuthentication]
    permission_classes = [OperatorOnly]
    throttle_classes: list = []

    def get(self, request: Request) -> Response:
        if "lora" in request.query_params:
            raise exceptions.MethodNotAllowed(
                "GET", detail="GET /admin/reload only shows what serves; change it with POST {\"lora\": ...}"
            )
        return Response(rollout.serving_now())

    def post(self, request: Request) -> Response:
        target = request.query_params.get("lora")
        if target is None and isinstance(request.data, dict):
            target = request.data.get("lora")
        if target is not None and not isinstance(target, str):
            raise exceptions.ValidationError({"lora": ["must be a string: latest, base or lora-v<N>"]})
        try:
            return Response(rollout.reload_adapter(target))
        except rollout.UnknownAdapter as exc:
            raise exceptions.NotFound(str(exc)) from None
        except rollout.RolloutError as exc:
            raise exceptions.ValidationError({"lora": [str(exc)]}) from None


class TrainingStatusView(APIView):
    """GET /api/training: what serves, the recent jobs and adapter versions (operators only)."""

    authentication_classes = [ArbiterTokenAuthentication, SessionAuthentication]
    permission_classes = [OperatorOnly]
    throttle_classes: list = []

    def get(self, request: Request) -> Response:
        from training.selectors import training_status

        return Response(training_status())
