"""Django's session, user and message middleware pass over an API call that carries no session cookie."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from swarm_site.middleware import AuthenticationMiddleware, MessageMiddleware, SessionMiddleware


def chain():
    seen = {}

    def view(request):
        seen.update(session=hasattr(request, "session"), user=hasattr(request, "user"),
                    messages=hasattr(request, "_messages"))  # fmt: skip
        return HttpResponse("ok")

    return SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(view))), seen


@pytest.mark.parametrize(
    ("path", "cookie", "full"),
    [("/orchestrate", None, False), ("/v1/chat/completions", None, False), ("/orchestrate", "abc", True),
     ("/admin/login/", None, True), ("/chat", None, True), ("/admin/reload", None, True)],
)  # fmt: skip
def test_only_a_request_that_can_have_a_session_goes_through_them(settings, path, cookie, full):
    handler, seen = chain()
    factory = RequestFactory()
    if cookie:
        factory.cookies[settings.SESSION_COOKIE_NAME] = cookie
    assert handler(factory.post(path)).status_code == 200
    assert seen == {"session": full, "user": full, "messages": full}


@pytest.mark.django_db
def test_a_staff_session_still_reaches_the_api(client, django_user_model):
    staff = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/api/training").status_code == 200  # staff-only: the session was read
    client.logout()
    assert client.get("/api/training").status_code in (401, 403)
