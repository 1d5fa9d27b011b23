"""GET/POST /admin/reload?lora=latest: serve another adapter now, without restarting anything."""

from __future__ import annotations

from rest_framework import exceptions, permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authentication import anonymous_loopback_allowed
from arbiter.auth import ArbiterClient, ArbiterTokenAuthentication
from training import rollout


class OperatorOnly(permissions.BasePermission):
    """The arbiter token, a staff session, or (the embedded local default) an anonymous caller on loopback."""

    message = "reload needs the arbiter token ('Authorization: Bearer <token>') or a staff session"

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if isinstance(user, ArbiterClient):
            return True
        if user is not None and getattr(user, "is_authenticated", False):
            if not (user.is_active and user.is_staff):
                raise exceptions.PermissionDenied("reload is for staff users only")
            return True
        if anonymous_loopback_allowed(request):
            return True
        raise exceptions.NotAuthenticated(self.message)


class ReloadView(APIView):
    """`lora=latest` (newest trained adapter), `lora=base`, `lora=lora-v3`; none: publish the state again.

    Answers what serves now: {"lora_version", "stable", "canary", "canary_weight"}.
    """

    authentication_classes = [ArbiterTokenAuthentication, SessionAuthentication]
    permission_classes = [OperatorOnly]

    def _reload(self, request: Request) -> Response:
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

    def get(self, request: Request) -> Response:
        return self._reload(request)

    def post(self, request: Request) -> Response:
        return self._reload(request)


class TrainingStatusView(APIView):
    """GET /api/training: what serves, the recent jobs and adapter versions (operators only)."""

    authentication_classes = [ArbiterTokenAuthentication, SessionAuthentication]
    permission_classes = [OperatorOnly]

    def get(self, request: Request) -> Response:
        from training.selectors import training_status

        return Response(training_status())
