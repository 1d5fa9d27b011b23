"""/v1/embeddings and /v1/models/{id} on the live stack through the openai SDK; the vectors against
sentence-transformers' MiniLM on torch, computed here."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest
import requests

from mining.embeddings import MIN_AGREEMENT, TorchBackend
from routing.openai_resources import EMBEDDING_MODEL
from tests.mining.conftest import requires_ml

pytestmark = [pytest.mark.integration, requires_ml]

TEXTS = [
    "What is the capital of Australia?",
    "Write a haiku about the Roman Empire.",
    "How many legs does a spider have?",
    "Ünïcödé façade: naïve café, 東京, Straße?",
    "The quarterly report shows revenue grew by 12.5% while costs stayed flat.",
]


@pytest.fixture
def client(stack, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def reference() -> TorchBackend:
    """sentence-transformers on torch, from the same model dir: what the served vectors must agree with."""
    return TorchBackend()


def assert_agree(vectors: list[list[float]], texts: list[str], reference: TorchBackend) -> None:
    served = np.array(vectors, dtype=np.float32)
    expected = reference.embed(texts)
    assert served.shape == expected.shape == (len(texts), 384)
    cosine = (served * expected).sum(axis=1) / np.linalg.norm(served, axis=1)
    assert cosine.min() >= MIN_AGREEMENT, dict(zip(texts, cosine.round(5).tolist(), strict=True))


def test_a_list_in_the_sdks_default_base64_agrees_with_torch(client, reference):
    response = client.embeddings.create(model=EMBEDDING_MODEL, input=TEXTS)  # the SDK asks for base64, decodes it
    assert response.model == EMBEDDING_MODEL and [d.index for d in response.data] == list(range(len(TEXTS)))
    assert response.usage.prompt_tokens == response.usage.total_tokens > len(TEXTS) * 2
    assert_agree([d.embedding for d in response.data], TEXTS, reference)


def test_a_string_as_floats_agrees_with_torch(client, reference):
    response = client.embeddings.create(model=EMBEDDING_MODEL, input=TEXTS[0], encoding_format="float")
    assert len(response.data) == 1 and response.usage.prompt_tokens == 9  # [CLS] what is ... ? [SEP]
    assert_agree([response.data[0].embedding], TEXTS[:1], reference)


def test_explicit_base64_is_little_endian_float32(client, reference):
    response = client.embeddings.create(model=EMBEDDING_MODEL, input=TEXTS[1:3], encoding_format="base64")
    packed = [d.embedding for d in response.data]
    assert all(isinstance(p, str) for p in packed)  # asked for explicitly: the SDK leaves it as it came
    vectors = [np.frombuffer(base64.b64decode(p), dtype="<f4").tolist() for p in packed]
    assert_agree(vectors, TEXTS[1:3], reference)


def test_dimensions_384_is_honoured_and_another_is_a_400_naming_it(client):
    assert len(client.embeddings.create(model=EMBEDDING_MODEL, input="hi", dimensions=384).data[0].embedding) == 384
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=EMBEDDING_MODEL, input="hi", dimensions=256)
    assert refused.value.body["param"] == "dimensions" and refused.value.body["code"] == "unsupported_value"


def test_an_unknown_field_is_a_400_naming_it(stack, api_key):
    response = requests.post(f"{stack.url}/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hi", "top_k": 3},
                             headers={"Authorization": f"Bearer {api_key}"}, timeout=60)  # fmt: skip
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["param"] == "top_k" and error["code"] == "unknown_parameter"


def test_token_ids_are_refused(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=EMBEDDING_MODEL, input=[[101, 7592, 102]])
    assert refused.value.body["param"] == "input" and "token ids" in refused.value.body["message"]


def test_a_chat_model_makes_no_embeddings(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="smollm2-135m", input="hi")
    assert missing.value.body["code"] == "model_not_found"


def test_models_retrieve(client):
    model = client.models.retrieve("smollm2-135m")
    assert (model.id, model.object, model.owned_by) == ("smollm2-135m", "model", "swarm-local")
    assert client.models.retrieve(EMBEDDING_MODEL).owned_by == "swarm-local"
    cloud = next(m.id for m in client.models.list().data if m.id.startswith("cloud/"))
    assert client.models.retrieve(cloud).owned_by == "swarm-cloud"  # an id with a slash
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found" and missing.value.status_code == 404
