"""POST /admin/reload {"lora": "latest"}: serve another adapter now, without restarting anything.

GET /admin/reload shows what serves and changes nothing. Changes are POST only, by the arbiter
token (machines, scripts) or a staff session with its CSRF token (people in the admin).

`latest` is the newest adapter that passed its evaluation gate (404 when none has). An adapter
that failed its gate, named as `lora-v<N>`, is refused with a 409 unless `force=true` is given:
then it serves, the log names the operator, and the answer says `"forced": true` with the gate's
verdict.
"""

from __future__ import annotations

from rest_framework import exceptions, permissions, status
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


class GateConflict(exceptions.APIException):
    """409: the adapter named failed its gate and `force` was not given."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "adapter_failed_gate"
    error_type = "conflict_error"
    param = "lora"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _force(request: Request) -> bool:
    """`force` from the query string or the JSON body: true/false (a bool or the usual words)."""
    value = request.query_params.get("force")
    if value is None and isinstance(request.data, dict):
        value = request.data.get("force")
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise exceptions.ValidationError({"force": ["must be true or false"]})


def _operator(request: Request) -> str:
    """Who asked, for the log: the arbiter token or the staff user's name."""
    user = request.user
    if isinstance(user, ArbiterClient):
        return "the arbiter token"
    return f"staff user {user.get_username()!r}"


class ReloadView(APIView):
    """POST `lora=latest` (newest adapter that passed its gate), `lora=base`, `lora=lora-v3` (query or
    JSON body), `force=true` to serve an adapter that failed its gate; none: publish the state again.
    GET: what serves now, nothing changed.

    POST answers what serves: {"lora_version", "stable", "canary", "canary_weight", "gate", "forced"};
    GET the same without `gate` and `forced`.
    """

    authentication_classes = [ArbiterTokenAuthentication, SessionAuthentication]
    permission_classes = [OperatorOnly]
    throttle_classes: list = []

    def get(self, request: Request) -> Response:
        if "lora" in request.query_params:
            raise exceptions.MethodNotAllowed(
                "GET", detail='GET /admin/reload only shows what serves; change it with POST {"lora": ...}'
            )
        return Response(rollout.serving_now())

    def post(self, request: Request) -> Response:
        target = request.query_params.get("lora")
        if target is None and isinstance(request.data, dict):
            target = request.data.get("lora")
        if target is not None and not isinstance(target, str):
            raise exceptions.ValidationError({"lora": ["must be a string: latest, base or lora-v<N>"]})
        force = _force(request)
        try:
            return Response(rollout.reload_adapter(target, force=force, operator=_operator(request)))
        except rollout.NoPassingAdapter as exc:
            raise exceptions.NotFound(str(exc), code="no_adapter_passed_gate") from None
        except rollout.UnknownAdapter as exc:
            raise exceptions.NotFound(str(exc)) from None
        except rollout.GateFailed as exc:
            raise GateConflict(str(exc)) from None
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
