"""The ONNX embedder: agrees with the torch model on real texts, cached per model file, falls back to torch."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from mining import embeddings
from mining.embeddings import MIN_AGREEMENT, OnnxBackend, OnnxUnavailable, TorchBackend
from tests.mining.conftest import requires_ml

pytestmark = requires_ml

# What the API sees besides the data set's questions (bench/pattern_lookup.py's unrelated prompts).
CHAT = [
    "Write a haiku about autumn.", "Tell me a joke about coffee.", "How do I center a div in CSS?",
    "Draft a polite email declining a meeting about volcanoes.", "Give me three names for a cat.", "thanks!",
    "What should I cook tonight with tomatoes?", "Explain quantum computing to a five year old.",
]  # fmt: skip


@pytest.fixture(scope="module")
def torch_backend() -> TorchBackend:
    return TorchBackend()


@pytest.fixture(scope="module")
def default_export() -> tuple[Path, dict]:
    """The export under SWARM_MODEL_DIR (made by `manage.py prefetch_models`; here if it is missing)."""
    path, meta, _ = embeddings.ensure_export()
    return path, meta


@pytest.fixture(scope="module")
def onnx_backend(default_export) -> OnnxBackend:
    return embeddings.load_onnx_backend()


@pytest.fixture
def cache_with_export(tmp_path, default_export) -> Path:
    """A private cache dir holding a copy of the default export (and its sidecar)."""
    path, _ = default_export
    cache = tmp_path / "cache"
    cache.mkdir()
    for source in (path, path.with_suffix(".json")):
        shutil.copy2(source, cache / source.name)
    return cache


@pytest.fixture
def fresh_backend():
    """The process's backend is chosen again in the test and again after it."""
    embeddings.set_backend(None)
    yield
    embeddings.set_backend(None)


def real_texts() -> list[str]:
    return embeddings.probe_texts() + CHAT


def test_the_onnx_vectors_agree_with_torch_on_every_real_text(onnx_backend, torch_backend):
    texts = real_texts()
    reference = torch_backend.embed(texts)
    one_by_one = np.vstack([onnx_backend.embed([t]) for t in texts])
    batched = onnx_backend.embed(texts)
    for vectors in (one_by_one, batched):
        assert vectors.shape == (len(texts), embeddings.DIMENSIONS) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        cosine = (vectors * reference).sum(axis=1)
        worst = int(cosine.argmin())
        assert cosine.min() >= MIN_AGREEMENT, (texts[worst], float(cosine.min()))
    # A text's vector does not depend on the batch it was embedded in (activations are quantized per row).
    assert (one_by_one * batched).sum(axis=1).min() >= 0.99999


def test_the_process_backend_is_onnx_and_says_how_it_was_checked(fresh_backend, default_export):
    backend = embeddings.get_backend()
    assert backend.name == "onnx"
    described = backend.describe()
    assert described["min_cosine_vs_torch"] >= MIN_AGREEMENT
    assert described["onnx_file"] == default_export[0].name
    assert embeddings.embed(["What is the capital of Australia?"]).shape == (1, embeddings.DIMENSIONS)


def test_a_cached_export_is_reused_without_exporting(cache_with_export, onnx_backend):
    before = {p.name: p.stat().st_mtime_ns for p in cache_with_export.iterdir()}
    path, meta, made = embeddings.ensure_export(cache_dir=cache_with_export)
    assert not made and path.parent == cache_with_export and meta["min_cosine_vs_torch"] >= MIN_AGREEMENT
    assert {p.name: p.stat().st_mtime_ns for p in cache_with_export.iterdir()} == before
    texts = ["What is the capital of Australia?", "How many legs does a spider have?"]
    copy = embeddings.load_onnx_backend(cache_dir=cache_with_export)
    np.testing.assert_array_equal(copy.embed(texts), onnx_backend.embed(texts))


@pytest.fixture
def changed_model(tmp_path) -> Path:
    """A model dir like the wheel's, but one bias in model.safetensors moved by 1e-4 (a new SHA-256)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    source = embeddings.model_dir()
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    with safe_open(source / "model.safetensors", framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    name = next(n for n in tensors if n.endswith("output.dense.bias"))
    tensors[name] = tensors[name] + 1e-4
    save_file(tensors, str(target / "model.safetensors"), metadata=metadata)
    return target


def test_a_changed_model_file_is_exported_again_and_the_old_export_dropped(changed_model, cache_with_export):
    old = embeddings.export_path(cache_dir=cache_with_export)
    new_sha = embeddings.model_sha256(changed_model)
    assert new_sha != embeddings.model_sha256()

    path, meta, made = embeddings.ensure_export(changed_model, cache_with_export)
    assert made and path != old and new_sha[:16] in path.name
    assert meta["model_sha256"] == new_sha and meta["min_cosine_vs_torch"] >= MIN_AGREEMENT
    assert json.loads(path.with_suffix(".json").read_text()) == meta
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert not list(cache_with_export.glob(".*tmp*"))

    again, _, made_again = embeddings.ensure_export(changed_model, cache_with_export)
    assert again == path and not made_again


def test_an_unreadable_export_is_made_again(cache_with_export, onnx_backend, caplog):
    target = embeddings.export_path(cache_dir=cache_with_export)
    target.write_bytes(b"not an onnx file")
    with caplog.at_level(logging.WARNING, logger="mining.embeddings"):
        backend = embeddings.load_onnx_backend(cache_dir=cache_with_export)
    assert "unreadable" in caplog.text
    assert target.stat().st_size > 10_000_000
    texts = ["What is 7*8?", "Which city is Australia's capital?"]
    assert (backend.embed(texts) * onnx_backend.embed(texts)).sum(axis=1).min() >= 0.9999


def test_a_pipeline_the_graph_does_not_reproduce_is_refused(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(embeddings.model_dir(), target)
    pooling = target / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    with pytest.raises(OnnxUnavailable, match="cls_token"):
        embeddings.ensure_export(target, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.onnx"))


def test_without_onnxruntime_lookups_embed_on_torch_with_a_warning(fresh_backend, monkeypatch, caplog, onnx_backend):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    with caplog.at_level(logging.WARNING, logger="mining.embeddings"):
        backend = embeddings.get_backend()
    assert backend.name == "torch"
    assert "fall back to torch" in caplog.text and "onnxruntime is not installed" in caplog.text
    texts = ["What is the capital of Canada?", "thanks!"]
    vectors = embeddings.embed(texts)
    assert (vectors * onnx_backend.embed(texts)).sum(axis=1).min() >= MIN_AGREEMENT
