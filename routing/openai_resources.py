"""OpenAI-compatible resources besides chat: POST /v1/embeddings and GET /v1/models/{id}.

Embeddings come from the sentence model pattern mining already runs (all-MiniLM-L6-v2, 384-d unit
vectors; mining/embeddings.py: ONNX Runtime kept only when it agrees with torch to cosine 0.999,
sentence-transformers on torch as the fallback), in the web process: a request holds one of the
caller's concurrency slots while it embeds. Every request field is honoured or refused with a 400
naming it (routing/openai_fields.py EMBEDDING_FIELDS); a text longer than the model reads is refused,
never cut. Token counts come from the model's own tokenizer (tokenizer.json), special tokens included.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mining import embeddings
from routing import services
from routing.openai_api import JsonOrStream, ModelNotFound, available_models
from routing.openai_fields import EMBEDDING_FIELDS, refuse_unknown, unsupported_value
from routing.serializers import StrictCharField, check_prompt_size, text_problem
from swarm_site.errors import ContextLengthExceeded, ServiceUnavailable

log = logging.getLogger(__name__)

EMBEDDING_MODEL = "all-minilm-l6-v2"  # the id clients send; mining.embeddings.MODEL_NAME is the model
EMBEDDING_OWNER = "swarm-local"
MAX_INPUTS = 2048  # OpenAI's limit on the items of one request
ENCODINGS = ("float", "base64")


# --------------------------------------------------------------------------- models


def _card(model_id: str, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owned_by}


def model_cards() -> list[dict[str, Any]]:
    """Every model the API serves, as OpenAI lists them: the chat models, then the embedding model."""
    owners = {services.AUTO: "swarm"}
    cards = [
        _card(model, owners.get(route, "swarm-cloud" if route.startswith(services.CLOUD_PREFIX) else "swarm-local"))
        for model, route in available_models().items()
    ]
    return [*cards, _card(EMBEDDING_MODEL, EMBEDDING_OWNER)]


def model_card(model_id: str) -> dict[str, Any]:
    """The card of one model; 404 `model_not_found` in OpenAI's shape when no such model is served."""
    for card in model_cards():
        if card["id"] == model_id:
            return card
    raise ModelNotFound(f"The model `{model_id}` does not exist; GET /v1/models lists them.")


# --------------------------------------------------------------------------- embeddings: the request


def _is_token_ids(items: list[Any]) -> bool:
    """OpenAI's other input shapes: a list of token ids, or a list of such lists."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in items)
    return ints or all(isinstance(v, list) for v in items)


def _input_texts(value: Any) -> list[str]:
    """`input` as a list of texts; a 400 on `input` naming the item at fault."""
    if isinstance(value, str):
        return _checked([value], where=lambda index: "input")
    if not isinstance(value, list):
        raise serializers.ValidationError(f"must be a string or a list of strings; got {type(value).__name__}")
    if not value:
        raise serializers.ValidationError("must not be an empty list")
    if len(value) > MAX_INPUTS:
        raise serializers.ValidationError(f"has {len(value)} items; the limit is {MAX_INPUTS}")
    if _is_token_ids(value):
        raise serializers.ValidationError(
            "token ids are not accepted: they are ids of another model's tokenizer, which this model cannot "
            "read; send the text"
        )
    return _checked(value, where=lambda index: f"input[{index}]")


def _checked(texts: list[Any], *, where: Callable[[int], str]) -> list[str]:
    """Each item a non-empty string a model can take (text_problem); their total size under the prompt limit."""
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise serializers.ValidationError(f"{where(index)} must be a string; got {type(text).__name__}")
        if not text:
            raise serializers.ValidationError(f"{where(index)} must not be an empty string")
        if (problem := text_problem(text)) is not None:
            raise serializers.ValidationError(f"{where(index)} {problem}")
    check_prompt_size(sum(len(text) for text in texts), what="input")
    return texts


class EmbeddingRequestSerializer(serializers.Serializer):
    """POST /v1/embeddings: OpenAI's request; a field the table does not know, or refuses, is a 400."""

    input = serializers.JSONField(help_text="A string, or a list of up to 2048 strings.")
    model = StrictCharField()
    encoding_format = serializers.ChoiceField(choices=ENCODINGS, default="float", allow_null=True)
    dimensions = serializers.IntegerField(required=False, allow_null=True)
    user = StrictCharField(required=False, allow_blank=True, max_length=256)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        refuse_unknown(data, EMBEDDING_FIELDS)
        return super().to_internal_value(data)

    def validate_input(self, value: Any) -> list[str]:
        return _input_texts(value)

    def validate_encoding_format(self, value: str | None) -> str:
        return value or "float"

    def validate_dimensions(self, value: int | None) -> int | None:
        if value is not None and value != embeddings.DIMENSIONS:
            raise unsupported_value(
                "dimensions", f"{EMBEDDING_MODEL} makes {embeddings.DIMENSIONS}-dimensional vectors only; got "
                f"{value}. Leave `dimensions` out or send {embeddings.DIMENSIONS}."
            )  # fmt: skip
        return value


# --------------------------------------------------------------------------- embeddings: the service


@lru_cache(maxsize=1)
def _tokenizer() -> tuple[Any, int]:
    """(MiniLM's tokenizer without truncation or padding, the most tokens the model reads).

    The same tokenizer.json both backends tokenize with (tokenizers, ~50 ms to load, never torch); its
    own settings cut at 128 and pad to 128, so both are turned off here to count what was sent.
    """
    path = embeddings.model_dir()
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise embeddings.EmbeddingModelMissing(f"the tokenizers library is not installed ({exc})") from exc
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    max_tokens = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
    return tokenizer, int(max_tokens)


def count_tokens(texts: list[str]) -> list[int]:
    """Tokens of each text as the model reads it ([CLS] and [SEP] included); 400 past the model's window."""
    tokenizer, limit = _tokenizer()
    counts = [len(encoding.ids) for encoding in tokenizer.encode_batch(texts)]
    for index, count in enumerate(counts):
        if count > limit:
            where = "input" if len(texts) == 1 else f"input[{index}]"
            raise ContextLengthExceeded(
                f"{where} has {count} tokens; {EMBEDDING_MODEL} reads at most {limit} (special tokens included). "
                "Split the text: it is refused rather than cut.",
                param="input",
            )
    return counts


def _encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # as OpenAI: the little-endian float32 bytes
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def create_embeddings(*, texts: list[str], model: str, encoding_format: str = "float", user: str | None = None,
                      api_key_id: int | None = None) -> dict[str, Any]:  # fmt: skip
    """OpenAI's embedding list for `texts`: unit-length 384-d vectors in input order, and token usage."""
    if model != EMBEDDING_MODEL:
        raise ModelNotFound(f"The model `{model}` does not exist or makes no embeddings; the embedding model is "
                            f"`{EMBEDDING_MODEL}` (GET /v1/models lists every model).")  # fmt: skip
    try:
        tokens = sum(count_tokens(texts))
        vectors = embeddings.embed(texts)
    except embeddings.EmbeddingModelMissing as exc:
        log.error("embeddings requested but the model cannot run here: %s", exc)
        raise ServiceUnavailable("The embedding model is not installed on this server.") from None
    log.info("embedded %d texts (%d tokens) for key %s, user %r", len(texts), tokens, api_key_id, user)
    data = [{"object": "embedding", "index": index, "embedding": _encode(vector, encoding_format)}
            for index, vector in enumerate(vectors)]  # fmt: skip
    return {"object": "list", "data": data, "model": EMBEDDING_MODEL,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip


# --------------------------------------------------------------------------- views


class EmbeddingsView(APIView):
    content_negotiation_class = JsonOrStream
    generates = True  # CPU work in this process: it holds one of the caller's concurrent slots

    def post(self, request: Request) -> Response:
        body = EmbeddingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = create_embeddings(texts=data["input"], model=data["model"], encoding_format=data["encoding_format"],
                                   user=data.get("user"), api_key_id=getattr(request.auth, "pk", None))  # fmt: skip
        return Response(result)


class ModelDetailView(APIView):
    content_negotiation_class = JsonOrStream

    def get(self, request: Request, model_id: str) -> Response:
        return Response(model_card(model_id))
