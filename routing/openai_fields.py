"""What the OpenAI-compatible API does with each request field: honoured, routed, passed or refused.

The rule: a field is never accepted and then ignored. Each field of each endpoint is in a table
here; a field not in the table is refused like OpenAI refuses it ("Unrecognized request argument
supplied"), a refused one with a 400 whose `param` names it. docs/OPENAI.md is this table in words,
and tests/routing/test_openai_fields.py checks that the two agree and that every row behaves as written.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rest_framework import exceptions, status

HONOURED = "honoured"  # done as OpenAI does it, on every route
ROUTED = "routed"  # honoured; `swarm-auto` sends the request to a route that can honour it (the local model)
REFUSED = "refused"  # a 400 naming the field (some values of an honoured field are refused too)


@dataclass(frozen=True)
class Field:
    status: str
    note: str


class UnsupportedParameter(exceptions.APIException):
    """A 400 in OpenAI's shape naming the field (`param`) that cannot be honoured."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "This parameter is not supported."
    default_code = "unsupported_parameter"

    def __init__(self, param: str, detail: str, *, code: str = "unsupported_parameter") -> None:
        super().__init__(detail, code=code)
        self.param = param


def unsupported_value(param: str, detail: str) -> UnsupportedParameter:
    return UnsupportedParameter(param, detail, code="unsupported_value")


def refuse_unknown(data: Mapping[str, Any], fields: Mapping[str, Field]) -> None:
    """400 for the first field of `data` that the table does not know, or that it refuses outright."""
    for name in data:
        rule = fields.get(name)
        if rule is None:
            raise UnsupportedParameter(name, f"Unrecognized request argument supplied: {name}",
                                       code="unknown_parameter")  # fmt: skip
        if rule.status == REFUSED and data[name] is not None:
            raise UnsupportedParameter(name, f"Unsupported parameter: '{name}': {rule.note}")


def routed_options(options: Mapping[str, Any]) -> list[str]:
    """The chat options (routing/serializers.py, set only when not a no-op) that the cascade cannot
    honour: a `swarm-auto` request with any of them goes to the local model."""
    companions = ("tool_choice", "parallel_tool_calls", "top_logprobs")  # set only with tools / logprobs
    return [name for name, value in options.items() if CHAT_FIELDS[name].status == ROUTED
            and name not in companions and value != CHAT_NOOP.get(name)]  # fmt: skip


def names(fields: Collection[str]) -> str:
    return ", ".join(sorted(fields))


# POST /v1/chat/completions
CHAT_FIELDS: dict[str, Field] = {
    "model": Field(HONOURED, "`swarm-auto` (the cascade), the local model's alias, or `cloud/<provider>`."),
    "messages": Field(
        HONOURED,
        "Roles system, developer, user, assistant (with `tool_calls`) and tool; text content "
        "parts (other part types are refused).",
    ),
    "max_tokens": Field(HONOURED, "Capped by SWARM_MAX_TOKENS_LIMIT (400 above)."),
    "max_completion_tokens": Field(HONOURED, "Same as max_tokens; it wins when both are given."),
    "temperature": Field(HONOURED, "0 to 2."),
    "stream": Field(HONOURED, "Server-sent events of chat.completion.chunk, then `data: [DONE]`."),
    "stream_options": Field(
        HONOURED, "`include_usage`: a last chunk with `usage` and `choices: []`. Other keys are refused."
    ),
    "n": Field(HONOURED, "1 only; other values are refused."),
    "stop": Field(
        HONOURED,
        "A string or up to 4: the answer ends before the first one, which is not included, and "
        "finish_reason is `stop`.",
    ),
    "user": Field(HONOURED, "Up to 256 characters; keeps a user on one canary arm (the adapter split, with the key)."),
    "seed": Field(ROUTED, "Repeatable sampling on the same model and adapter."),
    "top_p": Field(
        ROUTED, "Nucleus sampling; on the local model as given (1 included). `swarm-auto` keeps the cascade at 1."
    ),
    "presence_penalty": Field(ROUTED, "-2 to 2; `swarm-auto` keeps the cascade at 0."),
    "frequency_penalty": Field(ROUTED, "-2 to 2; `swarm-auto` keeps the cascade at 0."),
    "logit_bias": Field(
        ROUTED, "Token ids of the model answering (the local model's own vocabulary), bias -100 to 100."
    ),
    "logprobs": Field(ROUTED, "Log probabilities of the answer's tokens, from the model (false is a no-op)."),
    "top_logprobs": Field(ROUTED, "0 to 20 alternatives per token; needs logprobs."),
    "response_format": Field(
        ROUTED,
        "`text` (a no-op); `json_object` and `json_schema` (with `strict`) enforced by "
        "grammar-constrained decoding on the local model, passed to a cloud provider.",
    ),
    "tools": Field(
        ROUTED,
        "Functions; the local model calls them through a grammar over their JSON schemas (one call "
        "per turn), a cloud provider gets them passed.",
    ),
    "tool_choice": Field(ROUTED, "`auto`, `none`, `required` or a named function."),
    "parallel_tool_calls": Field(ROUTED, "true allows several calls (the local model makes one), false at most one."),
    "functions": Field(REFUSED, "deprecated by OpenAI; send `tools`."),
    "function_call": Field(REFUSED, "deprecated by OpenAI; send `tool_choice`."),
    "audio": Field(REFUSED, "no model here speaks audio."),
    "modalities": Field(REFUSED, "text is the only modality; leave it out."),
    "prediction": Field(REFUSED, "predicted outputs are not supported."),
    "reasoning_effort": Field(REFUSED, "no model here is a reasoning model."),
    "verbosity": Field(REFUSED, "not supported."),
    "service_tier": Field(REFUSED, "there is one tier."),
    "store": Field(
        REFUSED, "stored completions are not served; the gateway keeps its own interaction log (see the README)."
    ),
    "metadata": Field(REFUSED, "only used with `store`, which is not supported."),
    "web_search_options": Field(REFUSED, "web search is not supported."),
    "prompt_cache_key": Field(REFUSED, "the exact cache is keyed by the request itself."),
    "safety_identifier": Field(REFUSED, "send `user`."),
}

# Values at which a ROUTED chat field changes nothing: swarm-auto keeps the cascade.
CHAT_NOOP = {"top_p": 1, "presence_penalty": 0, "frequency_penalty": 0}

# POST /v1/embeddings
EMBEDDING_FIELDS: dict[str, Field] = {
    "input": Field(HONOURED, "A string or a list of up to 2048 non-empty strings (SWARM_MAX_PROMPT_CHARS in all), "
                   "each at most 256 tokens of the model's tokenizer (longer is refused, never cut). Token-id "
                   "arrays are refused: ids of another tokenizer cannot be read."),
    "model": Field(HONOURED, "`all-minilm-l6-v2` (all-MiniLM-L6-v2, 384-d unit vectors); another id is a 404 "
                   "`model_not_found`."),
    "encoding_format": Field(HONOURED, "`float` (the default) or `base64` (little-endian float32 bytes, as OpenAI); "
                             "other values are refused."),
    "dimensions": Field(HONOURED, "384 only (the model's fixed size); other values are refused."),
    "user": Field(HONOURED, "Up to 256 characters; logged with the request."),
}  # fmt: skip

# POST /v1/completions (OpenAI's legacy text completion: the local model on raw text)
COMPLETION_FIELDS: dict[str, Field] = {
    "model": Field(HONOURED, "The local model's alias only (`swarm-auto` and `cloud/<provider>` are refused: text "
                   "completion is served by the local model alone); an unknown id is a 404 `model_not_found`."),
    "prompt": Field(HONOURED, "A non-empty string, or a list of exactly one, completed as raw text (no chat "
                    "template; control-token strings stay text). Several prompts and token-id arrays are refused."),
    "max_tokens": Field(HONOURED, "Default 16 (as OpenAI); capped by SWARM_MAX_TOKENS_LIMIT (400 above). Prompt "
                        "tokens + max_tokens over the context window: 400 `context_length_exceeded` on `prompt`."),
    "temperature": Field(HONOURED, "0 to 2; default 0 (greedy, as chat here), where OpenAI's is 1."),
    "top_p": Field(HONOURED, "Nucleus sampling."),
    "stop": Field(HONOURED, "A string or up to 4: the text ends before the first one, which is not included, and "
                  "finish_reason is `stop`."),
    "seed": Field(HONOURED, "Repeatable sampling on the same model and adapter."),
    "presence_penalty": Field(HONOURED, "-2 to 2."),
    "frequency_penalty": Field(HONOURED, "-2 to 2."),
    "logit_bias": Field(HONOURED, "Token ids of the local model's vocabulary, bias -100 to 100."),
    "logprobs": Field(HONOURED, "0 to 5: the completion's tokens with `token_logprobs`, `top_logprobs` (the best "
                      "alternatives and the sampled token) and `text_offset` (from the start of the prompt); "
                      "streamed, they come whole with the last chunk."),
    "echo": Field(HONOURED, "The prompt is prepended to the text (streamed: as the first piece); refused with "
                  "`logprobs`, whose prompt tokens are not scored."),
    "stream": Field(HONOURED, "Server-sent events of text_completion chunks, then `data: [DONE]`."),
    "stream_options": Field(HONOURED, "`include_usage`: a last chunk with `usage` and `choices: []`. Other keys "
                            "are refused."),
    "n": Field(HONOURED, "1 only; other values are refused."),
    "best_of": Field(HONOURED, "1 only; other values are refused."),
    "user": Field(HONOURED, "Up to 256 characters; keeps a user on one canary arm (the adapter split), as for chat."),
    "suffix": Field(REFUSED, "insertion (fill-in-the-middle) is not supported by the local model."),
}  # fmt: skip
