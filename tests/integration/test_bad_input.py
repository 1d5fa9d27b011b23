"""Bad input gets a 4xx JSON error with a message, never a 500 or a traceback."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.integration

CASES = [
    ("malformed json", "/orchestrate", '{"prompt": "hi"', 400),
    ("not an object", "/orchestrate", '["hi"]', 400),
    ("missing prompt", "/orchestrate", "{}", 400),
    ("empty prompt", "/orchestrate", '{"prompt": ""}', 400),
    ("blank prompt", "/orchestrate", '{"prompt": "   "}', 400),
    ("prompt is a number", "/orchestrate", '{"prompt": 42}', 400),
    ("prompt is a list", "/orchestrate", '{"prompt": ["hi"]}', 400),
    ("max_tokens is text", "/orchestrate", '{"prompt": "hi", "max_tokens": "many"}', 400),
    ("max_tokens negative", "/orchestrate", '{"prompt": "hi", "max_tokens": -3}', 400),
    ("max_tokens too big", "/orchestrate", '{"prompt": "hi", "max_tokens": 100000}', 400),
    ("temperature too hot", "/orchestrate", '{"prompt": "hi", "temperature": 9}', 400),
    ("prompt over the limit", "/orchestrate", '{"prompt": "' + "a" * 9000 + '"}', 413),
    ("hybrid without query", "/hybrid", '{"prompt": "hi"}', 400),
    ("vote with null prompt", "/vote", '{"prompt": null}', 400),
]


@pytest.mark.parametrize(("name", "path", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_json_error(stack, name, path, body, status):
    response = stack.post(path, body, raw=True, timeout=10)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in response.text


def test_huge_body_is_refused_without_a_500(stack):
    body = '{"prompt": "' + "b" * 3_000_000 + '"}'
    response = stack.post("/orchestrate", body, raw=True, timeout=20)
    assert response.status_code in (400, 413)
    assert response.json()["error"]["message"]


def test_wrong_content_type_is_415(stack):
    response = requests.post(
        f"{stack.url}/orchestrate",
        data="prompt=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code == 415
    assert response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/orchestrate", 405), ("GET", "/nowhere", 404)])
def test_wrong_method_and_unknown_path_are_json(stack, method, path, status):
    response = requests.request(method, f"{stack.url}{path}", timeout=10)
    assert response.status_code == status
    assert response.json()["error"]["message"]
