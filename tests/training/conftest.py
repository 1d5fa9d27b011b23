"""Shared fixtures for the LoRA export / serving tests: the real base model in both engines.

- `base_spec`: the active model (SWARM_MODEL, else the registry's default), or the model a test names
  with `@pytest.mark.parametrize("base_spec", BASE_MODELS, indirect=True)`: one base per architecture
  the export supports, SmolLM2-135M (llama) and Qwen2.5-Coder-0.5B (qwen2, marked slow). A named
  model whose file is not prefetched is skipped, saying so.
- `hf_base`: transformers' copy of that model (training.hf.load_base).
- `q4_backend`: the served model, the registry's quantized GGUF in LlamaCppBackend (SmolLM2: Q4_1;
  Qwen: Q5_0/Q8_0 with Q4_K/Q6_K tensors).
- `f32_backend`: the same GGUF with every tensor dequantized to float32 (the exact values transformers
  loads), also in LlamaCppBackend, with a float32 KV cache. llama.cpp multiplies quantized weights
  against activations it quantizes to 8 bits, so the served model differs from transformers' float
  copy by up to ~1.3 logits; on the float32 copy with a float32 cache both engines compute the same
  function (first-step logits within ~0.002), which is what lets a test demand token-for-token
  equality. (llama.cpp's default f16 KV cache rounds K and V to 11 bits: harmless on the base models,
  ~0.015, but with a strong random LoRA on Qwen, whose K are large, it moved logits by up to 3.)
  The copy is built once and kept in pytest's cache dir.
- `lora_cases`: PEFT LoRAs with non-zero B on a copy of `hf_base`, exported to GGUF, with
  transformers' reference outputs on the probe prompts.

Figures (gaps, agreement, timings) are collected in FIGURES and printed in the terminal summary.
"""

from __future__ import annotations

import os

# Before torch or llama_cpp load libgomp (see training/hf.py): busy-waiting OpenMP threads made
# llama.cpp 20-40x slower once torch had run in the same process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import gguf
import numpy as np
import pytest

from inference.backends.base import AdapterRef
from inference.backends.llama import LlamaCppBackend
from inference.integrity import sha256_file
from inference.registry import ModelSource, ModelSpec, active_model, load_registry

PROBES = (
    "What is the capital of France?",
    "Write a haiku about rain.",
    "How do I reverse a list in Python?",
    "Explain photosynthesis briefly.",
    "What is 12 times 7?",
    "Give me three tips for sleeping better.",
    "Who wrote Hamlet?",
    "Translate 'good morning' to Spanish.",
)
NEW_TOKENS = 16
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

FIGURES: list[str] = []

SMOLLM2, QWEN = "smollm2-135m", "qwen2.5-coder-0.5b"
# One base model per architecture the GGUF LoRA export supports (training/gguf_lora.py PERMUTES_QK).
# Qwen's variants are slow (a 0.5B model in float32 in both engines on two cores: minutes) and get
# a longer timeout (their first test also builds the float32 copy, and converts the GGUF when the
# converted checkpoint is not cached yet).
BASE_MODELS = [
    pytest.param(SMOLLM2, id=SMOLLM2),
    pytest.param(QWEN, id=QWEN, marks=[pytest.mark.slow, pytest.mark.timeout(1800)]),
]


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("LoRA export / serving figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@dataclass
class Outputs:
    """First-step logits (one row per probe) and greedy continuations (token ids, EOS included);
    transformers' outputs also hold, per probe and step, the two best tokens and their logit margin."""

    logits: np.ndarray
    tokens: list[list[int]]
    top2: list[list[tuple[int, int, float]]] = field(default_factory=list)


@dataclass
class LoraCase:
    name: str
    ref: AdapterRef
    hf: Outputs
    export_s: float
    config: dict[str, Any] = field(default_factory=dict)


# --- the base model in both engines --------------------------------------------------------------


@pytest.fixture(scope="session")
def base_spec(request) -> ModelSpec:
    """The model a test names (indirect parametrization with an alias), else the active model."""
    alias = getattr(request, "param", None)
    if alias is None:
        return active_model()
    spec = load_registry().get(alias)
    path = spec.local_path()
    if not path.is_file():
        pytest.skip(f"{alias} is not prefetched: {path} is missing (python manage.py prefetch_models {alias})")
    return spec


@pytest.fixture(scope="session")
def hf_base(base_spec):
    from training.hf import cache_dir_for, load_base

    cached = cache_dir_for(base_spec).is_dir()
    started = time.perf_counter()
    model, tokenizer = load_base(base_spec)
    FIGURES.append(f"{base_spec.alias}: load_base ({'cached checkpoint' if cached else 'converted from the GGUF'}) "
                   f"{time.perf_counter() - started:.1f}s")  # fmt: skip
    return model, tokenizer


@pytest.fixture(scope="session")
def eos_id(hf_base) -> int:
    """The end-of-turn token both engines stop at (SmolLM2 and Qwen: `<|im_end|>`)."""
    return int(hf_base[1].eos_token_id)


@pytest.fixture(scope="session")
def probe_ids(hf_base) -> list[list[int]]:
    from training.hf import chat_prompt

    _, tokenizer = hf_base
    return [tokenizer(chat_prompt(tokenizer, p), add_special_tokens=False)["input_ids"] for p in PROBES]


@pytest.fixture(scope="session")
def q4_backend(base_spec):
    backend = LlamaCppBackend(base_spec)
    backend.load()
    yield backend
    backend.unload()


def dequantized_copy(src: Path, dst: Path) -> None:
    """`src` with every tensor dequantized to float32 (what transformers loads), metadata unchanged."""
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, str(reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()))
    for entry in reader.fields.values():
        if entry.name.startswith("GGUF.") or entry.name == gguf.Keys.General.ARCHITECTURE:
            continue
        vtype = entry.types[0]
        sub_type = entry.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = int(gguf.LlamaFileType.ALL_F32) if entry.name == gguf.Keys.General.FILE_TYPE else entry.contents()
        writer.add_key_value(entry.name, value, vtype, sub_type=sub_type)
    for tensor in reader.tensors:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        writer.add_tensor(tensor.name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="session")
def f32_spec(base_spec, request) -> ModelSpec:
    folder = Path(request.config.cache.mkdir("swarm-f32-base"))
    path = folder / f"{base_spec.alias}-{base_spec.sha256[:16]}.f32.gguf"
    digest_file = path.with_suffix(".sha256")
    if not (path.is_file() and digest_file.is_file()):
        started = time.perf_counter()
        partial = path.with_suffix(".part")
        dequantized_copy(base_spec.local_path(), partial)
        digest_file.write_text(sha256_file(partial))
        partial.replace(path)
        built_s = time.perf_counter() - started
        FIGURES.append(f"{base_spec.alias}: float32 copy of the base GGUF built in {built_s:.1f}s")
    return replace(base_spec, alias=f"{base_spec.alias}-f32", source=ModelSource("path", str(path)),
                   filename=path.name, sha256=digest_file.read_text().strip(), size=path.stat().st_size)  # fmt: skip


@pytest.fixture(scope="session")
def f32_backend(f32_spec):
    import llama_cpp

    class Float32Cache(llama_cpp.Llama):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32, **kwargs)

    backend = LlamaCppBackend(f32_spec)
    with mock.patch.object(llama_cpp, "Llama", Float32Cache):
        backend.load()  # verifies the copy's hash like any model file
    yield backend
    backend.unload()


# --- running both engines ------------------------------------------------------------------------


def hf_outputs(model, probe_ids: list[list[int]], eos: int) -> Outputs:
    """transformers' greedy outputs, all probes in one left-padded batch (same tokens as one by one,
    logits within 1e-4 of it; four times faster on two cores)."""
    import torch

    width = max(len(ids) for ids in probe_ids)
    prompt = torch.full((len(probe_ids), width), eos, dtype=torch.long)
    mask = torch.zeros_like(prompt)
    for row, ids in enumerate(probe_ids):
        prompt[row, width - len(ids) :] = torch.tensor(ids)
        mask[row, width - len(ids) :] = 1
    with torch.no_grad():
        out = model.generate(input_ids=prompt.to(model.device), attention_mask=mask.to(model.device),
                             max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=eos, pad_token_id=eos,
                             output_logits=True, return_dict_in_generate=True)  # fmt: skip
    tokens = []
    for row in out.sequences[:, width:].tolist():
        tokens.append(row[: row.index(eos) + 1] if eos in row else row)
    values, indices = torch.stack(out.logits, dim=1).float().topk(2, dim=-1)  # (probe, step, 2)
    margins = (values[..., 0] - values[..., 1]).tolist()
    top2 = [[(first, second, margin) for (first, second), margin in zip(ids, row, strict=True)]
            for ids, row in zip(indices.tolist(), margins, strict=True)]  # fmt: skip
    return Outputs(out.logits[0].float().cpu().numpy(), tokens, top2)


def first_logits(backend: LlamaCppBackend, ids: list[int]) -> np.ndarray:
    """llama.cpp's logits for the token after `ids`, evaluated from an empty KV cache."""
    llm = backend._llm
    llm.reset()
    llm.eval(ids)
    return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).copy()


def llama_outputs(backend: LlamaCppBackend, probe_ids: list[list[int]], eos: int) -> Outputs:
    """Greedy outputs of the backend with whatever adapter `use_adapter` put on it."""
    logits, tokens = [], []
    llm = backend._llm
    for ids in probe_ids:
        logits.append(first_logits(backend, ids))
        out: list[int] = []
        for token in llm.generate(ids, temp=0.0, reset=True):
            out.append(token)
            if token == eos or len(out) == NEW_TOKENS:
                break
        tokens.append(out)
    return Outputs(np.stack(logits), tokens)


def outputs_with_adapter(backend: LlamaCppBackend, ref, probe_ids: list[list[int]], eos: int) -> Outputs:
    """`llama_outputs` with the adapter `ref` applied; the backend is left on the base model."""
    backend.use_adapter(ref)
    try:
        return llama_outputs(backend, probe_ids, eos)
    finally:
        backend.use_adapter(None)


@pytest.fixture(scope="session")
def hf_base_outputs(hf_base, probe_ids, eos_id) -> Outputs:
    return hf_outputs(hf_base[0], probe_ids, eos_id)


# --- LoRA cases ----------------------------------------------------------------------------------

CASES = {
    # Small rank with rsLoRA (PEFT scale alpha/sqrt(r) != llama.cpp's alpha/r: exercises the fold into B).
    "r8-rslora": {"r": 8, "lora_alpha": 2.0, "use_rslora": True, "target_modules": ALL_TARGETS},
    # The trainer's default (training/trainer.py TrainParams): r=64, alpha=32, all 7 projections.
    "r64-default": {"r": 64, "lora_alpha": 32.0, "target_modules": ALL_TARGETS},
}


def make_peft(base_model, *, seed: int = 0, **config: Any):
    """A LoRA on a copy of `base_model` with random non-zero A and B (init_lora_weights=False)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    lora = LoraConfig(init_lora_weights=False, bias="none", task_type="CAUSAL_LM", **config)
    return get_peft_model(copy.deepcopy(base_model), lora).eval()


@pytest.fixture(scope="session")
def lora_cases(hf_base, probe_ids, eos_id, base_spec, tmp_path_factory) -> dict[str, LoraCase]:
    from training.gguf_lora import export_gguf_lora

    folder = tmp_path_factory.mktemp(f"adapters-{base_spec.alias}")
    cases = {}
    for name, config in CASES.items():
        model = make_peft(hf_base[0], **config)
        path = folder / f"{name}.gguf"
        started = time.perf_counter()
        digest = export_gguf_lora(model, path, base_path=base_spec.local_path())
        export_s = time.perf_counter() - started
        cases[name] = LoraCase(name=name, ref=AdapterRef(version=name, path=path, sha256=digest),
                               hf=hf_outputs(model, probe_ids, eos_id), export_s=export_s, config=config)  # fmt: skip
        FIGURES.append(f"{base_spec.alias} {name}: export {export_s:.2f}s, {path.stat().st_size / 1e6:.1f} MB")
        del model
    return cases


@pytest.fixture
def training_redis(settings, tmp_path, module_redis):
    """REDIS_URL -> this module's own redis-server, emptied (serving snapshot, GPU lock): no other test run
    shares it; adapters under tmp_path."""
    import redis

    from swarm_site.redis_client import get_redis

    settings.REDIS_URL = module_redis.url
    settings.SWARM_ADAPTER_DIR = tmp_path / "adapters"
    get_redis.cache_clear()
    client = redis.Redis.from_url(module_redis.url)
    client.flushdb()
    yield client
    client.flushdb()
    get_redis.cache_clear()
