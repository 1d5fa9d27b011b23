"""The JSON parser checks size and nesting depth before decoding; bad hosts and odd text get JSON errors."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.test import Client
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from swarm_site.errors import PayloadTooLarge, error_body
from swarm_site.parsers import LimitedJSONParser, json_depth_exceeds


def parse(body: str | bytes, **meta):
    raw = body.encode() if isinstance(body, str) else body
    request = APIRequestFactory().post("/orchestrate", data=raw, content_type="application/json", **meta)
    return LimitedJSONParser().parse(io.BytesIO(raw), "application/json", {"request": request})


@pytest.mark.parametrize(
    ("text", "limit", "exceeds"),
    [
        ("[[[]]]", 3, False),
        ("[[[[]]]]", 3, True),
        ('{"a": {"b": [1, 2, {"c": null}]}}', 4, False),
        ('{"a": {"b": [1, 2, {"c": null}]}}', 3, True),
        ('["[[[[[[[[", "{{{{{{{"]', 1, False),  # brackets inside strings do not count
        (r'["\"[[[[[[", "\\", [[]]]', 2, True),  # escaped quotes and backslashes do not end a string early
        ("[]" * 1000, 1, False),  # siblings, not nesting
        ("]]]][[", 2, False),  # malformed: the decoder reports it
        ('["unterminated [[[[[[[', 2, False),
    ],
)
def test_depth_counts_brackets_outside_strings(text, limit, exceeds):
    assert json_depth_exceeds(text, limit) is exceeds


def test_depth_scan_is_linear_on_hostile_input():
    bodies = ["[" * 1_000_000, '"' + '\\"' * 500_000, '["' + "\\x" * 500_000, "[0," * 300_000]
    for body in bodies:
        started = time.perf_counter()
        json_depth_exceeds(body, 64)
        assert time.perf_counter() - started < 1.0, body[:20]


def test_a_body_nested_deeper_than_the_limit_is_a_400_before_decoding(settings):
    settings.SWARM_MAX_JSON_DEPTH = 64
    assert parse("[" * 64 + "]" * 64) is not None
    with pytest.raises(exceptions.ParseError, match="nested more than 64 levels"):
        parse("[" * 100_000 + "]" * 100_000)


def test_a_body_over_the_byte_limit_is_a_413(settings):
    settings.SWARM_MAX_BODY_BYTES = 2048
    body = json.dumps({"prompt": "x" * 3000})
    with pytest.raises(PayloadTooLarge):
        parse(body)
    with pytest.raises(PayloadTooLarge):  # a Content-Length that understates the body changes nothing
        parse(body, CONTENT_LENGTH="10")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"prompt": "hi"', "JSON parse error"),
    (b'{"prompt": NaN}', "JSON parse error"),
    (b'{"prompt": "\xff"}', "not valid utf-8"),
])  # fmt: skip
def test_malformed_bodies_are_parse_errors(body, message):
    with pytest.raises(exceptions.ParseError, match=message):
        parse(body)


def test_a_valid_body_parses_as_drf_would():
    assert parse('{"prompt": "hi \\ud83d\\ude00", "n": [1, 2.5, null, true]}') == {
        "prompt": "hi \U0001f600", "n": [1, 2.5, None, True]}  # fmt: skip


def test_a_bad_host_header_is_a_json_400_on_api_paths():
    response = Client().post("/orchestrate", data="{}", content_type="application/json", HTTP_HOST="evil.example")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "invalid_host" and error["param"] == "Host"


def test_an_error_message_echoing_an_unpaired_surrogate_still_encodes():
    body = error_body(400, "bad value '\ud800'", param="user\udfff")
    assert json.dumps(body, ensure_ascii=False).encode("utf-8")
    assert body["error"]["message"] == "bad value '\ufffd'" and body["error"]["param"] == "user\ufffd"
