"""POST /v1/embeddings and GET /v1/models/{id} through the real views, access policy and embedding model."""

from __future__ import annotations

import base64
from urllib.parse import quote

import numpy as np
import pytest
from rest_framework.test import APIClient

from access.services import api_key_create, slot_acquire
from mining import embeddings
from routing.openai_api import available_models
from routing.openai_fields import EMBEDDING_FIELDS
from routing.openai_resources import EMBEDDING_MODEL, MAX_INPUTS, EmbeddingRequestSerializer, model_cards
from tests.mining.conftest import requires_ml

pytestmark = pytest.mark.django_db

TEXTS = ["The food was delicious and the waiter was friendly.", "What is the capital of France?"]


def post(body, *, key: str | None = None, remote: str = "127.0.0.1"):
    client = APIClient(REMOTE_ADDR=remote)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post("/v1/embeddings", body, format="json", **headers)


def get(path: str, *, remote: str = "127.0.0.1"):
    return APIClient(REMOTE_ADDR=remote).get(path)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_the_field_table_is_the_serializer():
    """Every field of EMBEDDING_FIELDS is read by the serializer, and the serializer reads no other."""
    assert set(EMBEDDING_FIELDS) == set(EmbeddingRequestSerializer().fields)


# --------------------------------------------------------------------------- embeddings


@requires_ml
def test_a_list_gets_the_models_vectors_in_order_with_token_usage(api_redis):
    response = post({"model": EMBEDDING_MODEL, "input": TEXTS})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "list" and body["model"] == EMBEDDING_MODEL
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    vectors = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    np.testing.assert_array_equal(vectors, embeddings.embed(TEXTS))  # the float32 values, exactly
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # [CLS] the food was delicious and the waiter was friendly . [SEP] + [CLS] what is the capital of france ? [SEP]
    assert body["usage"] == {"prompt_tokens": 12 + 9, "total_tokens": 12 + 9}


@requires_ml
def test_base64_is_the_little_endian_float32_bytes(api_redis):
    floats = post({"model": EMBEDDING_MODEL, "input": "hello world", "encoding_format": "float"}).json()
    packed = post({"model": EMBEDDING_MODEL, "input": "hello world", "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert decoded.shape == (embeddings.DIMENSIONS,)
    np.testing.assert_array_equal(decoded, np.array(floats["data"][0]["embedding"], dtype=np.float32))
    assert packed["usage"]["prompt_tokens"] == 4  # [CLS] hello world [SEP]


@requires_ml
@pytest.mark.parametrize("extra", [{"dimensions": 384}, {"dimensions": None}, {"encoding_format": None},
                                   {"user": "end-user-7"}, {"user": ""}])  # fmt: skip
def test_honoured_values(extra, api_redis):
    response = post({"model": EMBEDDING_MODEL, "input": ["hi"], **extra})
    assert response.status_code == 200, response.content
    assert len(response.json()["data"][0]["embedding"]) == embeddings.DIMENSIONS


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"input": [1, 2, 3]}, "input", "token ids are not accepted"),
    ({"input": [[1, 2], [3]]}, "input", "token ids are not accepted"),
    ({"input": ""}, "input", "input must not be an empty string"),
    ({"input": ["a", ""]}, "input", "input[1] must not be an empty string"),
    ({"input": []}, "input", "must not be an empty list"),
    ({"input": ["a", 3]}, "input", "input[1] must be a string; got int"),
    ({"input": 3}, "input", "must be a string or a list of strings; got int"),
    ({"input": {"text": "a"}}, "input", "must be a string or a list of strings; got dict"),
    ({"input": None}, "input", "may not be null"),
    ({"input": "a\x00b"}, "input", "must not contain NUL"),
    ({"input": ["ok", "b\x00"]}, "input", "input[1] must not contain NUL"),
    ({"input": ["x"] * (MAX_INPUTS + 1)}, "input", f"has {MAX_INPUTS + 1} items; the limit is {MAX_INPUTS}"),
    ({"model": None}, "model", "may not be null"),
    ({"encoding_format": "hex"}, "encoding_format", "not a valid choice"),
    ({"encoding_format": 1}, "encoding_format", "not a valid choice"),
    ({"dimensions": 256}, "dimensions", "384-dimensional vectors only"),
    ({"dimensions": "many"}, "dimensions", "valid integer"),
    ({"user": "u" * 257}, "user", "256"),
    ({"user": 7}, "user", "valid string"),
    ({"logprobs": True}, "logprobs", "Unrecognized request argument supplied: logprobs"),
])  # fmt: skip
def test_refused_with_a_400_naming_the_field(body, param, words, api_redis):
    error = error_of(post({"model": EMBEDDING_MODEL, "input": "hi", **body}), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"], error


def test_a_body_that_is_not_an_object_is_a_400(api_redis):
    error_of(post(["hi"]), 400)


def test_a_missing_field_is_a_400_naming_it(api_redis):
    assert error_of(post({"input": "hi"}), 400)["param"] == "model"
    assert error_of(post({"model": EMBEDDING_MODEL}), 400)["param"] == "input"


@pytest.mark.parametrize("model", ["text-embedding-3-small", "swarm-auto", "all-MiniLM-L6-v2"])
def test_a_model_that_makes_no_embeddings_is_a_404(model, api_redis):
    error = error_of(post({"model": model, "input": "hi"}), 404)
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert EMBEDDING_MODEL in error["message"]


@requires_ml
def test_a_text_longer_than_the_model_reads_is_refused_not_cut(api_redis):
    error = error_of(post({"model": EMBEDDING_MODEL, "input": ["short", "word " * 300]}), 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "input"
    assert "input[1] has 302 tokens" in error["message"] and "at most 256" in error["message"]
    assert post({"model": EMBEDDING_MODEL, "input": "word " * 254}).status_code == 200  # 254 + [CLS] + [SEP]


def test_all_texts_together_are_held_to_the_prompt_limit(api_redis, settings):
    settings.SWARM_MAX_PROMPT_CHARS = 10
    error = error_of(post({"model": EMBEDDING_MODEL, "input": ["abcdef", "ghijkl"]}), 413)
    assert "input has 12 characters; the limit is 10" in error["message"]


def test_a_missing_model_is_a_503(api_redis, monkeypatch):
    def missing(texts):
        raise embeddings.EmbeddingModelMissing("not installed here")

    monkeypatch.setattr(embeddings, "embed", missing)
    monkeypatch.setattr("routing.openai_resources.count_tokens", lambda texts: [1] * len(texts))
    error = error_of(post({"model": EMBEDDING_MODEL, "input": "hi"}), 503)
    assert error["type"] == "service_unavailable_error"


def test_a_caller_off_loopback_needs_a_key(api_redis):
    error = error_of(post({"model": EMBEDDING_MODEL, "input": "hi"}, remote="203.0.113.9"), 401)
    assert error["type"] == "authentication_error"


@requires_ml
def test_it_holds_one_of_the_callers_concurrent_slots_until_it_answers(api_redis):
    key = api_key_create(name="one-at-a-time", rate_limit_per_minute=0, max_concurrent=1)
    body = {"model": EMBEDDING_MODEL, "input": "hi"}
    held = slot_acquire(identity=f"key:{key.key.pk}", limit=1, hold_s=60)  # another request in flight
    error = error_of(post(body, key=key.raw, remote="203.0.113.9"), 429)
    assert error["code"] == "rate_limit_exceeded" and "at most 1 in flight" in error["message"]
    held.release()
    # Each answer gives its slot back: one after the other, both get in.
    assert [post(body, key=key.raw, remote="203.0.113.9").status_code for _ in range(2)] == [200, 200]


# --------------------------------------------------------------------------- models


def test_the_models_list_is_the_chat_models_then_the_embedding_model(api_redis):
    """GET /v1/models: every model /v1/chat/completions accepts, then the embedding model."""
    listed = APIClient(REMOTE_ADDR="127.0.0.1").get("/v1/models").json()["data"]
    assert listed == model_cards()
    assert [card["id"] for card in listed[:-1]] == list(available_models())
    assert listed[-1] == {"id": EMBEDDING_MODEL, "object": "model", "created": 0, "owned_by": "swarm-local"}


def test_each_model_has_its_card(api_redis):
    cards = model_cards()
    assert any(card["id"].startswith("cloud/") for card in cards)  # ids with a slash are routed too
    for card in cards:
        assert get(f"/v1/models/{card['id']}").json() == card
        assert get(f"/v1/models/{quote(card['id'], safe='')}").json() == card  # a client that escapes the slash


@pytest.mark.parametrize("model_id", ["gpt-4o", "cloud/nobody", "swarm-auto/", "SWARM-AUTO"])
def test_an_unknown_model_is_a_404_in_openais_shape(model_id, api_redis):
    error = error_of(get(f"/v1/models/{model_id}"), 404)
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert model_id in error["message"]


def test_a_model_card_needs_a_key_off_loopback(api_redis):
    assert error_of(get(f"/v1/models/{EMBEDDING_MODEL}", remote="203.0.113.9"), 401)["param"] is None
