"""LlamaCppBackend.use_adapter: hot switching on the loaded model, hash checks, stale KV, the LRU."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from inference.backends.base import AdapterRef, Backend
from inference.backends.llama import LlamaCppBackend
from inference.integrity import IntegrityError

MESSAGES = [
    {"role": "system", "content": "You are Swarm, a concise and helpful assistant. Answer in a few sentences."},
    {"role": "user", "content": "Explain photosynthesis briefly."},
]


# Greedy through top_k=1: a temperature-0 request starts from an empty KV cache anyway, which would
# hide a cache that survived an adapter switch; this one reuses the cached prefix like any sampled request.
GREEDY = {"max_tokens": 16, "temperature": 1.0, "top_k": 1}


def answer(backend: LlamaCppBackend) -> str:
    return backend.generate(MESSAGES, **GREEDY).text


@pytest.fixture(scope="module")
def adapter(lora_cases) -> AdapterRef:
    return lora_cases["r64-default"].ref


@pytest.fixture
def backend(base_spec):
    """A fresh backend per test (0.2 s): what one test switches never leaks into another."""
    b = LlamaCppBackend(base_spec)
    b.load()
    yield b
    b.unload()


def test_base_adapter_base_restores_the_base_outputs_exactly(backend, adapter, base_spec):
    """Same prompt every time, so llama-cpp-python would reuse the whole cached prefix if the KV
    cache survived a switch; a backend that had the adapter from the start is the reference."""
    base = answer(backend)
    started = time.perf_counter()
    backend.use_adapter(adapter)
    switch_s = time.perf_counter() - started
    with_adapter = answer(backend)
    backend.use_adapter(None)
    assert answer(backend) == base
    backend.use_adapter(adapter)
    assert answer(backend) == with_adapter

    fresh = LlamaCppBackend(base_spec)
    fresh.load()
    try:
        fresh.use_adapter(adapter)
        assert answer(fresh) == with_adapter
    finally:
        fresh.unload()
    assert with_adapter != base  # the adapter matters, so the comparisons above mean something
    from tests.training.conftest import FIGURES

    FIGURES.append(f"use_adapter: first load + switch {switch_s * 1000:.1f} ms")


def test_generate_base_answers_as_the_base_model_and_puts_the_adapter_back(backend, adapter):
    base = answer(backend)
    assert backend.generate_base(MESSAGES, **GREEDY).text == base  # no adapter on: generate
    backend.use_adapter(adapter)
    with_adapter = answer(backend)
    assert with_adapter != base
    assert backend.generate_base(MESSAGES, **GREEDY).text == base
    assert backend.active_adapter == adapter and answer(backend) == with_adapter  # back on, no stale KV


def test_switching_drops_the_kv_cache_and_an_unchanged_adapter_keeps_it(backend, adapter):
    llm = backend._llm
    answer(backend)
    assert llm.n_tokens > 0
    backend.use_adapter(None)  # already the base: nothing happens
    assert llm.n_tokens > 0
    backend.use_adapter(adapter)
    assert llm.n_tokens == 0
    answer(backend)
    kept = llm.n_tokens
    started = time.perf_counter()
    for _ in range(1000):
        backend.use_adapter(replace(adapter))  # an equal ref: no switch
    per_call_us = (time.perf_counter() - started) * 1000
    assert llm.n_tokens == kept
    from tests.training.conftest import FIGURES

    FIGURES.append(f"use_adapter with the active adapter (no change): {per_call_us:.2f} us per call")
    # Same file at another scale is a switch (llama.cpp applies the scale at graph build).
    backend.use_adapter(replace(adapter, scale=0.5))
    assert llm.n_tokens == 0 and backend.describe()["adapters_loaded"] == [adapter.version]


def test_a_corrupt_adapter_is_refused_and_the_backend_keeps_serving(backend, adapter, tmp_path):
    backend.use_adapter(adapter)
    before = answer(backend)
    corrupt = tmp_path / "corrupt.gguf"
    shutil.copyfile(adapter.path, corrupt)
    with open(corrupt, "r+b") as handle:
        handle.seek(corrupt.stat().st_size - 100)
        byte = handle.read(1)
        handle.seek(corrupt.stat().st_size - 100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    bad = AdapterRef(version="lora-bad", path=corrupt, sha256=adapter.sha256)
    with pytest.raises(IntegrityError, match=r"lora-bad.*corrupt"):
        backend.use_adapter(bad)
    missing = AdapterRef(version="lora-gone", path=tmp_path / "gone.gguf", sha256=adapter.sha256)
    with pytest.raises(IntegrityError, match="does not exist"):
        backend.use_adapter(missing)
    assert backend.describe()["adapter"] == adapter.version
    assert backend.describe()["adapters_loaded"] == [adapter.version]
    assert answer(backend) == before


def test_a_file_llama_cpp_cannot_load_is_refused(backend, tmp_path):
    from inference.integrity import sha256_file

    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file")
    with pytest.raises(RuntimeError, match="could not load adapter junk"):
        backend.use_adapter(AdapterRef(version="junk", path=junk, sha256=sha256_file(junk)))
    assert backend.describe()["adapter"] is None and backend.describe()["adapters_loaded"] == []


def test_the_lru_keeps_a_few_adapters_and_frees_the_rest(backend, adapter, lora_cases, tmp_path):
    other_adapter = lora_cases["r8-rslora"].ref
    backend.max_cached_adapters = 2
    refs = []
    for name in ("v1", "v2", "v3"):
        path = tmp_path / f"{name}.gguf"
        shutil.copyfile(adapter.path, path)
        refs.append(AdapterRef(version=name, path=path, sha256=adapter.sha256))
    v1, v2, _ = refs
    for ref in refs:
        backend.use_adapter(ref)
    assert backend.describe()["adapters_loaded"] == ["v2", "v3"]  # v1 freed
    backend.use_adapter(v2)
    backend.use_adapter(v1)  # reloaded; v3 is now the least recently used
    assert backend.describe()["adapters_loaded"] == ["v2", "v1"]
    assert backend.describe()["adapter"] == "v1"
    backend.use_adapter(None)
    assert backend.describe()["adapters_loaded"] == ["v2", "v1"]  # the base needs no slot

    # A ref whose file fails its hash changes nothing, even under a known version name.
    backend.use_adapter(v1)
    bad = replace(v1, path=tmp_path / "v1-b.gguf", sha256="f" * 64)
    shutil.copyfile(adapter.path, bad.path)
    with pytest.raises(IntegrityError):
        backend.use_adapter(bad)
    assert backend.describe()["adapters_loaded"] == ["v2", "v1"] and backend.describe()["adapter"] == "v1"
    v1_answer = answer(backend)

    # The same version name with another valid file: the new file serves, the old one is freed.
    replacement = replace(other_adapter, version="v1")
    backend.use_adapter(replacement)
    assert backend.describe()["adapters_loaded"] == ["v2", "v1"]
    assert backend.active_adapter == replacement
    assert answer(backend) != v1_answer

    backend.unload()
    assert backend.describe()["adapters_loaded"] == [] and not backend.loaded


def test_backends_without_adapter_support_say_so(base_spec):
    class Plain(Backend):
        loaded = True

        def load(self): ...
        def generate(self, messages, **kw): ...
        def stream(self, messages, **kw): ...
        def unload(self): ...

    Plain(base_spec).use_adapter(None)  # the base model is all such a backend serves: nothing to do
    with pytest.raises(NotImplementedError, match="cannot apply LoRA adapters"):
        Plain(base_spec).use_adapter(AdapterRef(version="lora-v1", path=Path("x.gguf"), sha256="0" * 64))
