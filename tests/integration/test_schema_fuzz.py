"""The live API against its own schema: schemathesis, in-process, over real HTTP to the real stack.

The schema is read from the running gateway's /api/schema/. Every operation gets schema-valid
(positive) and schema-breaking (negative) cases, plus the request examples the schema documents, a
bounded number each and the same ones every run (derandomized). Each response must be: not a
5xx, JSON whenever it is an error, a documented status code and content type, and a body that
matches the documented schema. Generation stays short: `max_tokens` is clamped to a few tokens.

The run is written to reports/schemathesis_<YYYYMMDD>.json (operations, cases, failures by check,
the 5xx count, the first failing requests) and any failure fails the test.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.stack import ROOT, Stack, wait_for

pytestmark = pytest.mark.integration

# Per operation and generation mode; SWARM_FUZZ_MAX_EXAMPLES=200 for a longer hunt by hand.
MAX_EXAMPLES = int(os.environ.get("SWARM_FUZZ_MAX_EXAMPLES", "20"))
MAX_TOKENS = 6  # generation stays short on 2 cores
TIME_BUDGET_S = 240.0 * max(1.0, MAX_EXAMPLES / 20)  # the whole run; past it the test fails
CHECKS = {
    "not_a_server_error": not_a_server_error,
    "status_code_conformance": status_code_conformance,
    "content_type_conformance": content_type_conformance,
    "response_schema_conformance": response_schema_conformance,
}
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
DETAILS_KEPT = 60  # failing requests written to the report


class OutOfTime(Exception):
    pass


def _operator_token(stack: Stack) -> str:
    """The stack's generated arbiter token (a request presenting any token makes the API create it)."""
    requests.get(f"{stack.url}/api/swap/lock", headers={"X-Swarm-Arbiter-Token": "-"}, timeout=10)
    path = Path(stack.env["SWARM_VAR_DIR"]) / "arbiter_token"
    return wait_for(lambda: path.is_file() and path.read_text().strip(), timeout=10, what="the arbiter token file")


def _credentials(operation: dict[str, Any], *, api_key: str, operator: str) -> dict[str, str]:
    names = {name for requirement in operation.get("security", []) for name in requirement}
    if "ApiKey" in names:
        return {"Authorization": f"Bearer {api_key}"}
    if "ArbiterToken" in names:
        return {"Authorization": f"Bearer {operator}"}
    return {}


def _short_generation(case: schemathesis.Case, limit: int) -> None:
    """Valid token counts become a few tokens (an invalid one stays: it is what a negative case tests)."""
    body = case.body
    if not isinstance(body, dict) or case.operation.method.upper() != "POST":
        return
    if not any(name in body for name in ("prompt", "query", "messages")):
        return
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit:
            body[name] = min(value, MAX_TOKENS)
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = MAX_TOKENS


def _with_model(drawn: tuple[schemathesis.Case, str | None]) -> schemathesis.Case:
    """A valid chat request names a served model now and then, so generated conversations reach the model."""
    case, model = drawn
    if model is not None and isinstance(case.body, dict):
        case.body["model"] = model
    return case


def _excerpt(value: Any, size: int = 300) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= size else text[:size] + f"... ({len(text)} chars)"


def _without_credentials(headers: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (headers or {}).items() if k.lower() not in ("authorization", "x-swarm-arbiter-token")}


def _exchange(case: schemathesis.Case, response: schemathesis.Response, content_type: str) -> dict[str, Any]:
    """One request and its answer, for people reading the report (credentials left out)."""
    body = case.body if isinstance(case.body, (dict, list, str, int, float, bool)) or case.body is None else None
    return {
        "request": {"method": case.method, "path": case.formatted_path, "query": case.query,
                    "headers": _without_credentials(case.headers),
                    "body": _excerpt(body) if body is not None else None},
        "response": {"status": response.status_code, "content_type": content_type, "body": _excerpt(response.text)},
    }  # fmt: skip


class Run:
    """What the fuzz saw: cases, statuses and failures per operation."""

    def __init__(self) -> None:
        self.cases: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.samples: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.failures: Counter[str] = Counter()
        self.server_errors = 0
        self.details: list[dict[str, Any]] = []
        self.leases: list[str] = []
        self.not_generated: list[str] = []

    def record(self, label: str, case: schemathesis.Case, response: schemathesis.Response) -> None:
        self.cases[label] += 1
        self.statuses[label][response.status_code] += 1
        if response.status_code >= 500:
            self.server_errors += 1
        content_type = (response.headers.get("content-type") or [""])[0]
        self.samples[label].setdefault(response.status_code, _exchange(case, response, content_type))
        problems = []
        if response.status_code >= 400 and not content_type.startswith("application/json"):
            problems.append(("json_error_responses", f"a {response.status_code} answered {content_type!r}, not JSON"))
        for name, check in CHECKS.items():
            try:
                case.validate_response(response, checks=[check])
            except FailureGroup as group:
                problems += [(name, f"{failure.title}: {failure.message}") for failure in group.exceptions]
            except AssertionError as exc:
                problems.append((name, str(exc)))
        for check, message in problems:
            self.failures[check] += 1
            if len(self.details) < DETAILS_KEPT:
                self.details.append({"check": check, "operation": label, "message": _excerpt(message, 600),
                                     **_exchange(case, response, content_type)})  # fmt: skip
        if label == "POST /api/swap/lock" and response.status_code == 201:
            self.leases.append(json.loads(response.content)["token"])

    def report(self, *, seconds: float, operations: list[str]) -> dict[str, Any]:
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "tool": f"schemathesis {schemathesis.__version__} (Python API, in-process), "
            f"hypothesis {hypothesis.__version__}",
            "settings": {"max_examples_per_operation_and_mode": MAX_EXAMPLES, "modes": [m.value for m in MODES],
                         "explicit_examples": True, "derandomize": True, "max_tokens": MAX_TOKENS},
            "seconds": round(seconds, 1),
            "operations_tested": len(operations),
            "operations": {op: {"cases": self.cases[op], "statuses": dict(sorted(self.statuses[op].items())),
                                "first_of_each_status": dict(sorted(self.samples[op].items()))} for op in operations},
            "cases": sum(self.cases.values()),
            "failures_by_check": {name: self.failures[name] for name in ["json_error_responses", *CHECKS]},
            "failures": sum(self.failures.values()),
            "server_errors_5xx": self.server_errors,
            "not_generated": self.not_generated,
            "failing_requests": self.details,
        }  # fmt: skip


def _fuzz(run: Run, *, name: str, label: str, strategy: Any, count: int, send: Any, deadline: float) -> None:
    """`count` cases of `strategy`, each sent and checked; the same cases every run."""

    @hypothesis.settings(
        max_examples=count, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @hypothesis.given(case=strategy)
    def fuzz(case: schemathesis.Case) -> None:
        if time.monotonic() > deadline:
            raise OutOfTime(f"the {TIME_BUDGET_S:.0f} s budget ran out at {name}")
        run.record(label, case, send(case))

    try:
        fuzz()
    except Unsatisfiable:
        run.not_generated.append(name)  # e.g. nothing to break in a request without inputs


def test_the_live_api_conforms_to_its_schema(stack, api_key):
    raw = requests.get(f"{stack.url}/api/schema/?format=json", timeout=30)
    assert raw.status_code == 200, raw.text
    document = raw.json()
    schema = schemathesis.openapi.from_dict(document)
    operator = _operator_token(stack)
    limit = document["components"]["schemas"]["PromptRequest"]["properties"]["max_tokens"]["maximum"]
    listed = requests.get(f"{stack.url}/v1/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    local_models = [m["id"] for m in listed.json()["data"] if not m["id"].startswith("cloud/")]  # no paid calls
    run = Run()
    started = time.monotonic()
    operations = []
    session = requests.Session()
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            operations.append(label)
            headers = _credentials(document["paths"][operation.path][operation.method.lower()], api_key=api_key,
                                   operator=operator)  # fmt: skip

            def send(case: schemathesis.Case, headers: dict[str, str] = headers) -> schemathesis.Response:
                _short_generation(case, limit)
                return case.call(base_url=stack.url, session=session, headers=headers, timeout=90)

            examples = schema.get_strategies_from_examples(operation)
            strategies = [(f"{label} examples", st.one_of(examples), len(examples))] if examples else []
            for mode in MODES:
                strategy = operation.as_strategy(generation_mode=mode)
                if label == "POST /v1/chat/completions" and mode == schemathesis.GenerationMode.POSITIVE:
                    strategy = st.tuples(strategy, st.sampled_from([None, *local_models])).map(_with_model)
                strategies.append((f"{label} {mode.value}", strategy, MAX_EXAMPLES))
            for name, strategy, count in strategies:
                _fuzz(run, name=name, label=label, strategy=strategy, count=count, send=send,
                      deadline=started + TIME_BUDGET_S)  # fmt: skip
    except OutOfTime as exc:
        pytest.fail(f"{exc}; {sum(run.cases.values())} cases ran")
    finally:
        release = {"Authorization": f"Bearer {operator}"}
        for token in run.leases:  # give back any GPU lock a generated request took on the shared stack
            session.delete(f"{stack.url}/api/swap/lock", headers={**release, "X-Swarm-Lease-Token": token}, timeout=10)
        report = run.report(seconds=time.monotonic() - started, operations=operations)
        path = ROOT / "reports" / f"schemathesis_{datetime.now(UTC):%Y%m%d}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")

    assert len(operations) == len({(m, p) for p, item in document["paths"].items() for m in item})
    assert all(run.cases[op] for op in operations), f"operations never called: {report['operations']}"
    for op in ("POST /orchestrate", "POST /vote", "POST /hybrid", "POST /v1/chat/completions", "GET /health"):
        assert run.statuses[op][200], f"{op} never answered 200: {dict(run.statuses[op])}"  # the happy path ran
    assert report["failures"] == 0 and run.server_errors == 0, json.dumps(report["failing_requests"][:10], indent=1)
