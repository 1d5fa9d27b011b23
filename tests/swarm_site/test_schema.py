"""The OpenAPI schema (swarm_site/schema.py): generated without warnings, every API endpoint in it with
its errors in the one error shape, served at /api/schema/, and a docs page that loads nothing from
another host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from swarm_site.errors import error_body

ROOT = Path(__file__).resolve().parents[2]
GENERATING = {("/orchestrate", "post"), ("/vote", "post"), ("/hybrid", "post"), ("/v1/chat/completions", "post")}
GENERATION_ERRORS = {"400", "401", "413", "415", "429", "503", "504"}
NOT_API = ("/api/schema/", "/api/docs/")  # the schema's own views


def _routes(patterns: list, prefix: str = "") -> list[tuple[str, type[APIView]]]:
    """(OpenAPI path, view class) of every DRF view the URLconf routes to."""
    routes = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "cls", None)
            if view is not None and issubclass(view, APIView):
                routes.append(("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).replace("{pk}", "{id}"), view))
    return routes


def _methods(view: type[APIView]) -> set[str]:
    return {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict[str, Any]:
    """What `manage.py spectacular --validate --fail-on-warn` writes: the command must pass."""
    out = tmp_path_factory.mktemp("schema") / "schema.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_ENV", "DJANGO_"))}
    env["SWARM_VAR_DIR"] = str(tmp_path_factory.mktemp("var"))
    proc = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
         "--file", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
    return json.loads(out.read_text())


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema's null type, references left as they are."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    return node


def _validator(schema: dict[str, Any], component: str) -> jsonschema.Draft7Validator:
    doc = {"$ref": f"#/components/schemas/{component}", "components": _openapi_to_jsonschema(schema["components"])}
    return jsonschema.Draft7Validator(doc)


def test_every_api_endpoint_and_method_is_documented(schema):
    routes = [(path, view) for path, view in _routes(get_resolver().url_patterns) if not path.startswith(NOT_API)]
    expected = {(path, method) for path, view in routes for method in _methods(view)}
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert {"/orchestrate", "/vote", "/hybrid", "/health", "/v1/models", "/v1/chat/completions", "/api/stats",
            "/admin/reload", "/api/training", "/api/swap/lock", "/api/swap", "/api/schedule",
            "/api/schedule/{id}"} <= {path for path, _ in expected}  # fmt: skip
    assert expected == documented
    for path, method in documented:
        operation = schema["paths"][path][method]
        assert operation.get("summary") and operation.get("tags"), f"{method} {path} is not described"
        assert any(code.startswith("2") for code in operation["responses"]), f"{method} {path}: no success answer"


def test_errors_are_documented_in_the_one_error_shape(schema):
    for path, method in GENERATING:
        responses = schema["paths"][path][method]["responses"]
        assert set(responses) >= GENERATION_ERRORS, f"{method} {path} lacks {GENERATION_ERRORS - set(responses)}"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if int(code) < 400 or path == "/health":  # /health's 503 is its report
                    continue
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                    f"{method} {path} {code}"
                )


@pytest.mark.parametrize(
    "body",
    [
        error_body(400, "prompt: This field is required.", code="required", param="prompt"),
        error_body(503, "Redis is unavailable", code="service_unavailable"),
        error_body(500, "Internal error; it has been logged."),
    ],
)
def test_the_error_shape_the_code_writes_matches_the_documented_one(schema, body):
    _validator(schema, "Error").validate(body)


def test_the_documented_error_shape_refuses_other_shapes(schema):
    errors = list(_validator(schema, "Error").iter_errors({"detail": "Not found."}))  # DRF's own shape
    assert errors


def test_chat_completions_documents_json_and_the_event_stream(schema):
    operation = schema["paths"]["/v1/chat/completions"]["post"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert operation["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    request = schema["components"]["schemas"]["ChatCompletionRequest"]
    assert request["properties"]["messages"]["items"]["properties"]["role"]["enum"]
    assert {"model", "messages"} <= set(request["required"])


def test_security_schemes_follow_the_views_authentication(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "http", "scheme": "bearer", "description": schemes["ApiKey"]["description"]}
    assert schemes["ArbiterTokenHeader"]["name"] == "X-Swarm-Arbiter-Token"
    paths = schema["paths"]
    for path, method in GENERATING | {("/v1/models", "get")}:
        assert {"ApiKey": []} in paths[path][method]["security"], (method, path)
    for path, method in [("/admin/reload", "post"), ("/api/training", "get"), ("/api/swap", "post")]:
        security = paths[path][method]["security"]
        assert {"ArbiterToken": []} in security and {} not in security, (method, path)
    assert {} in paths["/api/swap/lock"]["get"]["security"]  # open read
    assert not paths["/health"]["get"].get("security") or {} in paths["/health"]["get"]["security"]


def test_prompt_limits_come_from_settings(schema, settings):
    prompt = schema["components"]["schemas"]["PromptRequest"]["properties"]
    assert prompt["prompt"]["maxLength"] == settings.SWARM_MAX_PROMPT_CHARS
    assert prompt["max_tokens"]["maximum"] == settings.SWARM_MAX_TOKENS_LIMIT


def test_the_schema_is_served_as_yaml_and_json(client):
    as_yaml = client.get("/api/schema/")
    assert as_yaml.status_code == 200 and as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    as_json = client.get("/api/schema/?format=json")
    assert as_json.status_code == 200 and as_json["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert yaml.safe_load(as_yaml.content)["paths"].keys() == json.loads(as_json.content)["paths"].keys()
    assert "/orchestrate" in json.loads(as_json.content)["paths"]


def test_the_docs_page_loads_only_local_assets(client, settings):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert len(assets) >= 3  # the bundle, the preset, the stylesheet
    static = "/" + settings.STATIC_URL.strip("/") + "/"
    for url in assets:
        assert url.startswith(static), url
        assert finders.find(url.removeprefix(static)), f"{url} is not among the static files"
    assert not re.search(r"(?:https?:)?//[\w.-]+\.\w+", html), "the page names another host"
    assert '"validatorUrl": null' in html  # Swagger UI would otherwise call its online validator
