"""Arbiter HTTP endpoints: validate, call one service, shape the response.

| endpoint | auth | answer |
| --- | --- | --- |
| `POST /api/swap/lock {"holder","ttl_s","purpose"}` | token | 201 lease `{token, fencing, expires_at, ...}` / 423 |
| `GET /api/swap/lock` | open | 200 status (never the token) |
| `DELETE /api/swap/lock` + lease token (body `token` or `X-Swarm-Lease-Token`) | token | 204 / 409 |
| `DELETE /api/swap/lock?force=true` | staff session (+ CSRF) | 204 / 403 |
| `POST /api/swap {"model","worker"?,"lease_token"?,"fencing"?,"deadline_s"?}` | token | 200 / 4xx / 502 / 504 |
| `GET /api/schedule`, `GET /api/schedule/<id>` | open | 200 |
| `POST /api/schedule`, `DELETE /api/schedule/<id>` | token | 201 / 204 |

"token" is the arbiter token (arbiter/auth.py): `Authorization: Bearer <token>` or
`X-Swarm-Arbiter-Token`; wrong or missing -> 401. Reads are open: they carry no secrets.
"""

from __future__ import annotations

from collections.abc import Callable

from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbiter import lock, services
from arbiter.auth import (
    ArbiterTokenAuthentication,
    ReadOpenWriteToken,
    StaffSessionAuthentication,
    force_requested,
    require_staff,
)
from arbiter.errors import translate
from arbiter.models import ScheduledJob
from arbiter.serializers import (
    LockReleaseSerializer,
    LockRequestSerializer,
    ScheduledJobSerializer,
    SwapRequestSerializer,
)

LEASE_HEADER = "HTTP_X_SWARM_LEASE_TOKEN"


class ArbiterView(APIView):
    authentication_classes = [ArbiterTokenAuthentication]
    permission_classes = [ReadOpenWriteToken]
    throttle_classes: list = []  # operators and their scripts; the API's caller limits are for API keys

    def handle_exception(self, exc: Exception) -> Response:
        return super().handle_exception(translate(exc))

    def get_exception_handler(self) -> Callable[[Exception, dict], Response | None]:
        project_handler = super().get_exception_handler()

        def handler(exc: Exception, context: dict) -> Response | None:
            response = project_handler(exc, context)
            extra = getattr(exc, "extra", None)
            if response is None:
                return None
            if extra:
                response.data.update(extra)  # e.g. 423: holder, expires_at next to `error`
            return response

        return handler


class SwapLockView(ArbiterView):
    authentication_classes = [ArbiterTokenAuthentication, StaffSessionAuthentication]
    allows_force_release = True

    def get(self, request: Request) -> Response:
        return Response(lock.status().as_dict())

    def post(self, request: Request) -> Response:
        serializer = LockRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lease = lock.acquire(**serializer.validated_data)
        return Response(lease.public(), status=status.HTTP_201_CREATED)

    def delete(self, request: Request) -> Response:
        if force_requested(request):
            lock.force_release(by=require_staff(request))
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = request.data if isinstance(request.data, dict) else {}
        header = request.META.get(LEASE_HEADER, "").strip()
        serializer = LockReleaseSerializer(data={"token": header} if header else data)
        serializer.is_valid(raise_exception=True)
        lock.release(serializer.validated_data["token"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class SwapView(ArbiterView):
    def post(self, request: Request) -> Response:
        serializer = SwapRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            report = services.request_swap(
                alias=data["model"], worker=data.get("worker") or None, lease_token=data.get("lease_token"),
                fencing=data.get("fencing"), holder=data["holder"], deadline_s=data.get("deadline_s"),
            )  # fmt: skip
        except services.UnknownWorker as exc:
            raise exceptions.ValidationError({"worker": [str(exc)]}) from None
        return Response(report)


class ScheduleListView(ArbiterView):
    def get(self, request: Request) -> Response:
        return Response(ScheduledJobSerializer(services.schedule_list(), many=True).data)

    def post(self, request: Request) -> Response:
        serializer = ScheduledJobSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.schedule_create(**serializer.validated_data)
        return Response(ScheduledJobSerializer(job).data, status=status.HTTP_201_CREATED)


class ScheduleDetailView(ArbiterView):
    def _job(self, pk: int) -> ScheduledJob:
        job = services.schedule_get(pk)
        if job is None:
            raise exceptions.NotFound(f"no scheduled job {pk}")
        return job

    def get(self, request: Request, pk: int) -> Response:
        return Response(ScheduledJobSerializer(self._job(pk)).data)

    def delete(self, request: Request, pk: int) -> Response:
        services.schedule_delete(self._job(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
