"""Give back a caller's concurrency slots when its response is done (streams: after the last byte)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from swarm_site.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)


class ReleaseSlotsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for slot in getattr(request, "swarm_slots", ()):
            # The WSGI server calls response.close() once the body is sent (or the client left);
            # Django runs these closers then, as it does for FileResponse's file.
            response._resource_closers.append(lambda slot=slot: _release(slot))
        return response


def _release(slot) -> None:
    try:
        slot.release()
    except REDIS_ERRORS:
        log.warning("could not release a concurrency slot (%s); it expires by itself", slot.key)
