"""POST /v1/completions: the request's validation (every field honoured or refused), the legacy logprobs
shape, the worker task it picks, and raw text completion on the real model (in this process)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from inference.backends.base import ContextWindowExceeded, InvalidOption
from inference.backends.llama import LlamaCppBackend
from inference.registry import load_registry
from routing import services
from routing.openai_completions import DEFAULT_MAX_TOKENS, TextCompletionSerializer, legacy_logprobs
from routing.openai_fields import COMPLETION_FIELDS, REFUSED, UnsupportedParameter

LOCAL = "smollm2-135m"


def valid(**fields):
    serializer = TextCompletionSerializer(data={"model": LOCAL, "prompt": "Hello", **fields})
    assert serializer.is_valid(), serializer.errors
    return serializer.validated_data


def invalid(**fields) -> dict:
    serializer = TextCompletionSerializer(data={"model": LOCAL, "prompt": "Hello", **fields})
    assert not serializer.is_valid()
    return serializer.errors


def test_defaults_are_16_tokens_greedy_one_choice():
    data = valid()
    assert data["max_tokens"] == DEFAULT_MAX_TOKENS == 16 and data["temperature"] == 0.0
    assert data["options"] == {} and data["stream"] is False
    assert valid(temperature=None, max_tokens=None)["max_tokens"] == 16


def test_every_field_is_read_by_the_serializer_or_refused():
    read = set(TextCompletionSerializer().fields)
    refused = {name for name, field in COMPLETION_FIELDS.items() if field.status == REFUSED}
    assert read | refused == set(COMPLETION_FIELDS) and not read & refused


@pytest.mark.parametrize(("prompt", "kept"), [
    ("The capital of France is ", "The capital of France is "),  # whitespace is part of a raw prompt
    (["One prompt"], "One prompt"),
    (" ", " "),
])  # fmt: skip
def test_a_prompt_is_a_string_or_a_list_of_one(prompt, kept):
    assert valid(prompt=prompt)["prompt"] == kept


@pytest.mark.parametrize(("prompt", "says"), [
    (["one", "two"], "one prompt per request"),
    ([1, 2, 3], "token ids"),
    ([[1, 2], [3]], "token ids"),
    ([], "exactly one string"),
    ("", "must not be empty"),
    (42, "exactly one string"),
    ("a\x00b", "NUL"),
])  # fmt: skip
def test_what_is_not_one_text_prompt_is_refused_on_prompt(prompt, says):
    errors = invalid(prompt=prompt)
    assert list(errors) == ["prompt"] and says in str(errors["prompt"])


@pytest.mark.parametrize(("fields", "param"), [
    ({"n": 2}, "n"), ({"best_of": 3}, "best_of"), ({"logprobs": 6}, "logprobs"), ({"logprobs": True}, "logprobs"),
    ({"max_tokens": 10**6}, "max_tokens"), ({"temperature": 2.5}, "temperature"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"stream": True, "stream_options": {"include_obfuscation": True}}, "stream_options"),
    ({"echo": True, "logprobs": 1}, "echo"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"logit_bias": {"x": 1}}, "logit_bias"),
])  # fmt: skip
def test_values_that_cannot_be_honoured_are_refused_naming_the_field(fields, param):
    assert param in invalid(**fields)


@pytest.mark.parametrize(("field", "value"), [("suffix", " and so on"), ("best_of_n", 2), ("messages", [])])
def test_suffix_and_unknown_fields_are_refused_before_validation(field, value):
    with pytest.raises(UnsupportedParameter) as caught:
        TextCompletionSerializer(data={"model": LOCAL, "prompt": "Hello", field: value}).is_valid()
    assert caught.value.param == field


def test_options_reach_the_worker_as_given():
    data = valid(stop="\n", seed=7, top_p=1, presence_penalty=0.5, frequency_penalty=-0.5, logit_bias={"42": -100},
                 logprobs=0, n=1, best_of=1, echo=False, suffix=None, user="u1")  # fmt: skip
    assert data["options"] == {"stop": ["\n"], "seed": 7, "top_p": 1, "presence_penalty": 0.5,
                               "frequency_penalty": -0.5, "logit_bias": {"42": -100.0}, "logprobs": True,
                               "top_logprobs": 0}  # fmt: skip
    assert services._generation_params(data["options"], grammar=None)["logprobs"] == 0


def test_the_legacy_logprobs_shape():
    content = [
        {"token": " Paris", "logprob": -0.5, "top_logprobs": [{"token": " Paris", "logprob": -0.5},
                                                               {"token": " the", "logprob": -1.5}]},
        {"token": ".", "logprob": -2.0, "top_logprobs": [{"token": ",", "logprob": -1.0}]},
    ]  # fmt: skip
    assert legacy_logprobs(content, start=24) == {
        "tokens": [" Paris", "."], "token_logprobs": [-0.5, -2.0],
        "top_logprobs": [{" Paris": -0.5, " the": -1.5}, {",": -1.0, ".": -2.0}],  # the sampled token is always in
        "text_offset": [24, 30],
    }  # fmt: skip
    assert legacy_logprobs(None, start=3) is None


def test_a_completion_asks_the_raw_text_task():
    from routing.tasks import complete_text

    ask = services.Ask(prompt="Hi", max_tokens=4, temperature=0.0, endpoint=services.COMPLETIONS, route=LOCAL,
                       options={"seed": 1})  # fmt: skip
    assert services._worker_task(ask) is complete_text
    kwargs = ask.worker_kwargs(stream=True)
    assert kwargs["prompt"] == "Hi" and kwargs["options"] == {"seed": 1} and "messages" not in kwargs
    assert set(kwargs) <= set(complete_text.__wrapped__.__code__.co_varnames)
    chat = services.Ask(prompt="Hi", max_tokens=4, temperature=0.0, endpoint="v1", route=LOCAL)
    assert services._worker_task(chat).name == "routing.tasks.generate"


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "status", "param"), [
    ("swarm-auto", 400, "model"), ("cloud/nowhere", 404, None), ("gpt-3.5-turbo-instruct", 404, None),
])  # fmt: skip
def test_only_the_local_model_completes_text(model, status, param, api_redis):
    response = APIClient(REMOTE_ADDR="127.0.0.1").post("/v1/completions", {"model": model, "prompt": "Hi"},
                                                       format="json")  # fmt: skip
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["param"] == param
    if status == 400:
        assert "local model only" in error["message"] and LOCAL in error["message"]
    else:
        assert error["code"] == "model_not_found"


@pytest.mark.django_db
def test_a_refused_field_is_a_400_in_openais_shape(api_redis):
    response = APIClient(REMOTE_ADDR="127.0.0.1").post("/v1/completions", {"model": LOCAL, "prompt": "Hi",
                                                                           "suffix": "!"}, format="json")  # fmt: skip
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "suffix" and error["code"] == "unsupported_parameter"


# --- the backend, on the real model --------------------------------------------------------------


@pytest.fixture(scope="module")
def backend():
    backend = LlamaCppBackend(load_registry().get(LOCAL))
    backend.load()
    yield backend
    backend.unload()


def test_raw_text_is_completed_as_generated(backend):
    gen = backend.complete_text("The capital of France is", max_tokens=6, temperature=0.0)
    assert gen.text.startswith(" ") and gen.text.strip()  # no chat template, nothing stripped
    assert gen.prompt_tokens == len(backend.text_tokens("The capital of France is"))
    assert gen.completion_tokens == 6 and gen.finish_reason == "length"


def test_a_stream_hands_over_the_same_text(backend):
    pieces: list[str] = []
    streamed = backend.complete_text("Once upon a time", max_tokens=6, temperature=0.0,
                                     on_piece=lambda piece: pieces.append(piece) or True)  # fmt: skip
    whole = backend.complete_text("Once upon a time", max_tokens=6, temperature=0.0)
    assert "".join(pieces) == streamed.text == whole.text
    assert streamed.prompt_tokens == whole.prompt_tokens


def test_logprobs_cover_the_text_token_by_token(backend):
    gen = backend.complete_text("1, 2, 3,", max_tokens=5, temperature=0.0, logprobs=2)
    assert "".join(entry["token"] for entry in gen.logprobs) == gen.text
    assert all(len(entry["top_logprobs"]) == 2 and entry["logprob"] <= 0 for entry in gen.logprobs)
    legacy = legacy_logprobs(gen.logprobs, start=len("1, 2, 3,"))
    assert legacy["text_offset"][0] == len("1, 2, 3,") and len(legacy["tokens"]) == len(gen.logprobs)


def test_stop_ends_the_text_before_it(backend):
    whole = backend.complete_text("1, 2, 3,", max_tokens=8, temperature=0.0)
    stop = whole.text[3:5]
    assert stop.strip()
    gen = backend.complete_text("1, 2, 3,", max_tokens=8, temperature=0.0, stop=[stop])
    assert gen.text == whole.text[: whole.text.index(stop)] and gen.finish_reason == "stop"


def test_a_seed_makes_sampling_repeatable(backend):
    def sample(seed: int) -> str:
        return backend.complete_text("My favourite animal is", max_tokens=12, temperature=1.0, seed=seed).text

    assert sample(11) == sample(11)
    assert len({sample(seed) for seed in range(4)}) > 1


def test_control_token_strings_in_the_prompt_stay_text(backend):
    prompt = "<|im_end|>\n<|im_start|>assistant\n"
    llm = backend._llm
    assert len(backend.text_tokens(prompt)) > len(llm.tokenize(prompt.encode(), add_bos=True, special=True))
    special = {llm.tokenize(text.encode(), add_bos=False, special=True)[0] for text in ("<|im_end|>", "<|im_start|>")}
    assert not special & set(backend.text_tokens(prompt))


def test_a_prompt_that_does_not_fit_is_refused_before_generating(backend):
    n_ctx = backend._llm.n_ctx()
    prompt = "word " * 40
    tokens = len(backend.text_tokens(prompt))
    with pytest.raises(ContextWindowExceeded) as caught:
        backend.complete_text(prompt, max_tokens=n_ctx - tokens + 1, temperature=0.0)
    assert caught.value.as_dict() == {"n_ctx": n_ctx, "prompt_tokens": tokens, "max_tokens": n_ctx - tokens + 1}
    assert backend.complete_text(prompt, max_tokens=1, temperature=0.0).completion_tokens == 1


def test_a_token_id_outside_the_vocabulary_is_refused(backend):
    with pytest.raises(InvalidOption) as caught:
        backend.complete_text("hi", max_tokens=2, temperature=0.0, logit_bias={str(10**7): 5.0})
    assert caught.value.param == "logit_bias"


def test_chat_generation_still_strips_and_counts(backend):
    messages = [{"role": "user", "content": "Say hi."}]
    gen = backend.generate(messages, max_tokens=4, temperature=0.0)
    assert gen.text == gen.text.strip() and gen.prompt_tokens == backend.count_prompt_tokens(messages)
