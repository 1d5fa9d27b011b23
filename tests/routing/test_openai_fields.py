"""The conformance table: docs/OPENAI.md is routing/openai_fields.py's tables, and every row behaves
as written. Refused rows are checked here through the real view; each honoured or routed row names
the test that checks its behaviour against the live stack (and that test must exist)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from routing.openai_fields import (
    CHAT_FIELDS,
    COMPLETION_FIELDS,
    EMBEDDING_FIELDS,
    HONOURED,
    REFUSED,
    ROUTED,
    routed_options,
)
from routing.serializers import ChatCompletionSerializer

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "OPENAI.md"
FEATURES = "tests/integration/test_openai_features.py"
CLIENTS = "tests/integration/test_openai_clients.py"
API = "tests/integration/test_openai_api.py"
EMBEDDINGS = "tests/integration/test_openai_embeddings.py"
COMPLETIONS = "tests/integration/test_openai_completions.py"

# Where each honoured or routed chat field's behaviour is checked against the live stack.
CHAT_CHECKS = {
    "model": f"{API}::test_models_lists_the_cascade_the_local_model_and_providers",
    "messages": f"{FEATURES}::test_a_required_tool_call_round_trip",
    "max_tokens": f"{API}::test_the_local_model_streams_and_a_client_that_leaves_cancels_generation",
    "max_completion_tokens": f"{CLIENTS}::test_langchain_structured_output_by_function_calling_validates",
    "temperature": f"{FEATURES}::test_a_seed_makes_sampling_repeatable",
    "stream": f"{API}::test_the_openai_client_gets_a_real_stream",
    "stream_options": f"{FEATURES}::test_a_stream_ends_with_a_usage_chunk",
    "n": f"{FEATURES}::test_what_cannot_be_honoured_is_a_400_naming_the_field",
    "stop": f"{FEATURES}::test_stop_ends_the_answer_before_the_stop_text",
    "user": "tests/training/test_serving.py",
    "seed": f"{FEATURES}::test_a_seed_makes_sampling_repeatable",
    "top_p": f"{FEATURES}::test_sampling_options_reach_the_model",
    "presence_penalty": f"{FEATURES}::test_sampling_options_reach_the_model",
    "frequency_penalty": f"{FEATURES}::test_sampling_options_reach_the_model",
    "logit_bias": f"{FEATURES}::test_sampling_options_reach_the_model",
    "logprobs": f"{FEATURES}::test_logprobs_cover_the_answer_token_by_token",
    "top_logprobs": f"{FEATURES}::test_logprobs_cover_the_answer_token_by_token",
    "response_format": f"{FEATURES}::test_json_schema_answers_always_validate",
    "tools": f"{FEATURES}::test_a_required_tool_call_round_trip",
    "tool_choice": f"{FEATURES}::test_a_named_tool_is_the_one_called",
    "parallel_tool_calls": f"{CLIENTS}::test_langchain_structured_output_by_function_calling_validates",
}
EMBEDDING_CHECKS = {name: EMBEDDINGS for name in EMBEDDING_FIELDS}
COMPLETION_CHECKS = {
    "model": f"{COMPLETIONS}::test_an_unknown_model_is_a_404",
    "prompt": f"{COMPLETIONS}::test_a_prompt_is_completed_as_raw_text_and_logged",
    "max_tokens": f"{COMPLETIONS}::test_the_default_is_16_tokens_greedy",
    "temperature": f"{COMPLETIONS}::test_a_seed_makes_sampling_repeatable",
    "top_p": "tests/routing/test_openai_completions.py",
    "stop": f"{COMPLETIONS}::test_stop_ends_the_text_before_it",
    "seed": f"{COMPLETIONS}::test_a_seed_makes_sampling_repeatable",
    "presence_penalty": "tests/routing/test_openai_completions.py",
    "frequency_penalty": "tests/routing/test_openai_completions.py",
    "logit_bias": "tests/routing/test_openai_completions.py",
    "logprobs": f"{COMPLETIONS}::test_logprobs_in_the_legacy_shape",
    "echo": f"{COMPLETIONS}::test_echo_prepends_the_prompt",
    "stream": f"{COMPLETIONS}::test_a_stream_is_the_same_text_and_ends_with_a_usage_chunk",
    "stream_options": f"{COMPLETIONS}::test_a_stream_is_the_same_text_and_ends_with_a_usage_chunk",
    "n": f"{COMPLETIONS}::test_what_cannot_be_honoured_is_a_400_naming_the_field",
    "best_of": f"{COMPLETIONS}::test_what_cannot_be_honoured_is_a_400_naming_the_field",
    "user": "tests/routing/test_openai_completions.py",
}

# A value for each refused field, as a client would send it.
REFUSED_VALUES = {
    "functions": [{"name": "f", "parameters": {"type": "object"}}],
    "function_call": "auto",
    "audio": {"voice": "alloy", "format": "wav"},
    "modalities": ["text", "audio"],
    "prediction": {"type": "content", "content": "x"},
    "reasoning_effort": "low",
    "verbosity": "low",
    "service_tier": "flex",
    "store": True,
    "metadata": {"a": "b"},
    "web_search_options": {},
    "prompt_cache_key": "k",
    "safety_identifier": "u1",
}


def doc_rows(title: str) -> dict[str, tuple[str, str]]:
    """The `| field | status | note |` rows of the table under `## <title>` in docs/OPENAI.md."""
    section = DOC.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| (.*) \|$", section, flags=re.M)
    return {name: (status, note) for name, status, note in rows}


@pytest.mark.parametrize(("title", "table"), [
    ("POST /v1/chat/completions", CHAT_FIELDS),
    ("POST /v1/embeddings", EMBEDDING_FIELDS),
    ("POST /v1/completions", COMPLETION_FIELDS),
])  # fmt: skip
def test_the_doc_table_is_the_code_table(title, table):
    assert doc_rows(title) == {name: (field.status, field.note) for name, field in table.items()}


def test_every_chat_field_is_read_by_the_serializer_or_refused():
    read = set(ChatCompletionSerializer().fields)
    refused = {name for name, field in CHAT_FIELDS.items() if field.status == REFUSED}
    assert read | refused == set(CHAT_FIELDS) and not read & refused
    assert refused == set(REFUSED_VALUES)


def _test_exists(reference: str) -> bool:
    path, _, name = reference.partition("::")
    tree = ast.parse((ROOT / path).read_text())
    return not name or any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body)


@pytest.mark.parametrize(("table", "checks"), [
    (CHAT_FIELDS, CHAT_CHECKS), (EMBEDDING_FIELDS, EMBEDDING_CHECKS), (COMPLETION_FIELDS, COMPLETION_CHECKS),
])  # fmt: skip
def test_every_honoured_or_routed_row_names_an_existing_check(table, checks):
    kept = {name for name, field in table.items() if field.status in (HONOURED, ROUTED)}
    assert set(checks) == kept
    assert [reference for reference in checks.values() if not _test_exists(reference)] == []


@pytest.mark.django_db
@pytest.mark.parametrize("field", sorted(REFUSED_VALUES))
def test_a_refused_field_is_a_400_naming_it(field, api_redis):
    body = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "hi"}], field: REFUSED_VALUES[field]}
    response = APIClient(REMOTE_ADDR="127.0.0.1").post("/v1/chat/completions", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == field and error["code"] == "unsupported_parameter" and field in error["message"]


@pytest.mark.django_db
def test_an_unknown_field_is_a_400_like_openai(api_redis):
    body = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "hi"}], "temprature": 0.5}
    response = APIClient(REMOTE_ADDR="127.0.0.1").post("/v1/chat/completions", body, format="json")
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "temprature" and error["code"] == "unknown_parameter"
    assert error["message"] == "Unrecognized request argument supplied: temprature"


ROUTED_SAMPLES = {
    "seed": 3, "top_p": 0.5, "presence_penalty": 0.5, "frequency_penalty": 0.5, "logit_bias": {"42": 1},
    "logprobs": True, "response_format": {"type": "json_object"},
    "tools": [{"type": "function", "function": {"name": "f"}}],
}  # fmt: skip


@pytest.mark.parametrize("field", sorted(ROUTED_SAMPLES))
def test_a_routed_field_takes_swarm_auto_to_the_local_model(field):
    body = {"model": "swarm-auto", "messages": [{"role": "user", "content": "hi"}], field: ROUTED_SAMPLES[field]}
    serializer = ChatCompletionSerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    assert routed_options(serializer.validated_data["options"]) == [field]


@pytest.mark.parametrize(("field", "noop"), [
    ("top_p", 1), ("presence_penalty", 0), ("frequency_penalty", 0), ("logprobs", False), ("logit_bias", {}),
    ("seed", None),
    ("response_format", {"type": "text"}), ("tool_choice", "none"), ("parallel_tool_calls", True), ("stop", None),
])  # fmt: skip
def test_a_routed_field_at_its_no_op_value_keeps_the_cascade(field, noop):
    body = {"model": "swarm-auto", "messages": [{"role": "user", "content": "hi"}], field: noop}
    serializer = ChatCompletionSerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    assert routed_options(serializer.validated_data["options"]) == []
