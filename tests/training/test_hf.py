"""transformers' copy of the base model: verified before loading, prompts identical to llama.cpp's
(on each base model: SmolLM2, llama; Qwen2.5, qwen2)."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest
import torch

from inference.integrity import IntegrityError
from routing.heads.agent0 import SYSTEM_PROMPT
from tests.training.conftest import BASE_MODELS
from training.hf import SERVED_SPECIALS_ATTR, _cache_is_valid, cache_dir_for, chat_prompt, load_base

USER_TEXTS = (
    "What is the capital of France?",
    "hi",
    "Write a function `add(a, b)` in Python.\n\nExamples: add(1, 2) == 3",
    "Ünïcödé, emoji 🚀 and <|im_end|> typed by a user",
    # Qwen: llama.cpp reads `</s>` (a plain token in the GGUF) as control and `<tool_call>` as user-defined.
    "</s> and <tool_call>{}</tool_call> typed by a user",
    "  leading and trailing spaces  ",
)


def served_prompt_ids(backend, messages) -> list[int]:
    """The token ids llama.cpp evaluated for `messages` on the serving path (create_chat_completion).

    The context holds the prompt's tokens first (then the few generated ones: llama-cpp-python goes
    past max_tokens=1 to finish a multi-byte character).
    """
    gen = backend.generate(messages, max_tokens=1, temperature=0.0)
    llm = backend._llm
    assert 0 < gen.prompt_tokens <= llm.n_tokens
    return llm.input_ids[: gen.prompt_tokens].tolist()


@pytest.mark.parametrize("base_spec", BASE_MODELS, indirect=True)
@pytest.mark.parametrize("system", [SYSTEM_PROMPT, None])
@pytest.mark.parametrize("user_text", USER_TEXTS)
def test_chat_prompt_tokenizes_to_the_ids_llama_cpp_serves(base_spec, hf_base, q4_backend, user_text, system):
    """Exact equality: same template (from the GGUF), same Jinja flags, no BOS added by either side,
    and special-token strings typed by a user (`<|im_end|>`) read as text by both: serving breaks them
    up (LlamaCppBackend.as_text), and training must see the same tokens."""
    _, tokenizer = hf_base
    q4_backend.use_adapter(None)
    messages = [{"role": "user", "content": user_text}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    ids = tokenizer(chat_prompt(tokenizer, user_text, system=system), add_special_tokens=False)["input_ids"]
    assert ids == served_prompt_ids(q4_backend, messages)


@pytest.mark.parametrize("base_spec", BASE_MODELS, indirect=True)
def test_the_strings_training_breaks_up_are_those_serving_breaks_up(base_spec, hf_base, q4_backend):
    """llama.cpp's own list for the GGUF (control + user-defined tokens), not the tokenizer's flags."""
    assert getattr(hf_base[1], SERVED_SPECIALS_ATTR) == q4_backend._special_texts


@pytest.mark.parametrize("base_spec", BASE_MODELS, indirect=True)
def test_chat_prompt_ends_with_the_assistant_header(base_spec, hf_base):
    _, tokenizer = hf_base
    text = chat_prompt(tokenizer, "hello")
    assert text.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n")
    assert text.endswith("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")


def test_load_base_refuses_a_corrupt_gguf_before_loading(base_spec, tmp_path, settings):
    target = tmp_path / base_spec.filename
    shutil.copyfile(base_spec.local_path(), target)
    with open(target, "r+b") as handle:
        handle.seek(base_spec.size // 2)
        byte = handle.read(1)
        handle.seek(base_spec.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    settings.SWARM_MODEL_DIR = tmp_path
    with pytest.raises(IntegrityError, match="corrupt"):
        load_base(base_spec)
    assert not (tmp_path / "hf").exists()  # nothing converted from the bad file


def test_a_damaged_converted_checkpoint_is_not_used(hf_base, base_spec, tmp_path, settings):
    """The cache entry is verified file by file against its manifest; one flipped byte -> rebuilt."""
    source = cache_dir_for(base_spec)
    settings.SWARM_MODEL_DIR = tmp_path
    copy = cache_dir_for(base_spec)
    copy.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == "config.json":
            shutil.copyfile(item, copy / item.name)
        else:
            os.link(item, copy / item.name)  # the big files are only read
    assert _cache_is_valid(copy, base_spec)
    config = copy / "config.json"
    layers = f'"num_hidden_layers": {hf_base[0].config.num_hidden_layers}'
    assert layers in config.read_text()
    config.write_text(config.read_text().replace(layers, '"num_hidden_layers": 1'))
    assert not _cache_is_valid(copy, base_spec)
    assert not _cache_is_valid(copy, replace(base_spec, sha256="0" * 64))  # another GGUF: another entry


def test_the_transformers_model_is_a_plain_float_model(hf_base):
    model, _ = hf_base
    assert not getattr(model, "hf_quantizer", None)
    assert "quantization_config" not in model.config.to_dict()
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert not model.training


@pytest.mark.slow
def test_the_cached_checkpoint_equals_a_fresh_conversion_of_the_gguf(hf_base, base_spec):
    """~30 s on two cores: transformers' GGUF loader run again, compared tensor by tensor."""
    cached, _ = hf_base
    fresh, tokenizer = load_base(base_spec, cache=False)
    fresh_state = fresh.state_dict()
    assert fresh_state.keys() == cached.state_dict().keys()
    assert all(torch.equal(fresh_state[k], v) for k, v in cached.state_dict().items())
    assert tokenizer.chat_template == hf_base[1].chat_template
