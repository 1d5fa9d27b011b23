"""The base model in transformers, loaded from the very GGUF file llama.cpp serves.

`load_base` verifies the registry's GGUF (size + SHA-256, like the serving backend) and loads it with
`AutoModelForCausalLM.from_pretrained(dir, gguf_file=name)`: transformers dequantizes every tensor to
float32 with gguf-py's numpy `dequantize` (SmolLM2: Q4_1/Q8_0; Qwen2.5: Q5_0/Q8_0 with Q4_K/Q6_K
tensors, all of which gguf-py reads), so PEFT trains on exactly the weights llama.cpp holds. For the
llama architecture it also undoes llama.cpp's rope permutation of q/k; qwen2's q/k are stored as HF
has them and loaded as they are (training/gguf_lora.py PERMUTES_QK writes each LoRA to match).
Embeddings are tied exactly when the GGUF has no `output.weight` (SmolLM2: tied; this Qwen file
carries its own Q8_0 `output.weight`, so untied, as llama.cpp runs it). The conversion is slow
(SmolLM2 ~30 s, Qwen2.5-0.5B ~165 s on two shared cores: gguf-py parses the vocabulary twice and
dequantizes every tensor), so the converted checkpoint is kept on disk next to the models
(`<SWARM_MODEL_DIR>/hf/<alias>-<sha256[:16]>/`, float32 safetensors: 0.5 GB / 2.5 GB), with a
manifest naming the GGUF hash it came from and the SHA-256 of every file; later loads verify the
manifest and take ~3 s / 6-25 s. A cache entry that fails verification is rebuilt from the GGUF,
never used.

`chat_prompt` renders the chat template stored in the GGUF (`tokenizer.chat_template`; ChatML for
both models): the same template llama-cpp-python picks for this model when `chat_format` is null (it
renders it with the same Jinja settings: trim_blocks, lstrip_blocks) and then tokenizes with special
tokens parsed and no BOS added. The user's text gets its special-token strings broken up exactly as
the serving backend does (`as_text`, with llama.cpp's own list of them: `served_special_texts`).
Tokenize the result with `add_special_tokens=False` and the ids equal llama.cpp's
(tests/training/test_hf.py proves it on both real models).

Nothing is fetched from a hub: the Hugging Face libraries are put in offline mode before import.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mining.embeddings import OFFLINE_ENV

for _key, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)
# torch and llama.cpp share one OpenMP runtime (libgomp) in a process that trains then evaluates.
# With libgomp's default busy-waiting, llama.cpp ran 20-40x slower after torch had run (two cores);
# passive waiting keeps both usable. Read once, when the first of them loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402 - after the offline switches
import transformers  # noqa: E402
from django.conf import settings  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase  # noqa: E402

from inference.integrity import IntegrityError, sha256_file, verify_file  # noqa: E402
from inference.registry import ModelSpec, active_model  # noqa: E402
from routing.heads.agent0 import SYSTEM_PROMPT  # noqa: E402

log = logging.getLogger(__name__)

MANIFEST = "swarm-manifest.json"
CACHE_FORMAT = 1
# The tokenizer attribute where load_base keeps the serving backend's special-token strings (as_text).
SERVED_SPECIALS_ATTR = "swarm_served_special_texts"


def cache_dir_for(spec: ModelSpec) -> Path:
    """Where the converted checkpoint of `spec` lives (keyed by the GGUF's hash)."""
    return Path(settings.SWARM_MODEL_DIR) / "hf" / f"{spec.alias}-{spec.sha256[:16]}"


def pick_device(device: str | None = None) -> str:
    """`device`, or CUDA when torch sees a GPU, else CPU."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_base(
    spec: ModelSpec | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | None = None,
    cache: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) of the registry's model (default: the active one), in eval mode on `device`.

    Raises IntegrityError when the GGUF is missing or differs from the registry. `cache=False` always
    converts from the GGUF and writes nothing.
    """
    spec = spec or active_model()
    path = spec.local_path()
    verify_file(path, sha256=spec.sha256, size=spec.size)
    started = time.perf_counter()
    if cache:
        folder = cache_dir_for(spec)
        if not _cache_is_valid(folder, spec):
            _build_cache(folder, spec, path)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:
        model, tokenizer = _from_gguf(path, dtype)
    setattr(tokenizer, SERVED_SPECIALS_ATTR, served_special_texts(path))
    model.to(pick_device(device))
    model.eval()
    log.info("loaded %s in transformers on %s in %.1fs", spec.alias, model.device, time.perf_counter() - started)
    return model, tokenizer


def served_special_texts(path: Path) -> tuple[str, ...]:
    """The strings the serving backend breaks up in messages for the GGUF at `path` (LlamaCppBackend.as_text).

    Asked of llama.cpp itself (a vocab-only load: ~0.5 s SmolLM2, ~2 s Qwen; cached per file version)
    with the backend's own function, because the tokenizer's flags miss some: llama.cpp treats
    user-defined tokens (Qwen's `<tool_call>`, not special in transformers) and end-of-generation
    lookalikes (Qwen's `</s>`, a plain token in the GGUF) as control text too.
    """
    stat = path.stat()
    return _served_special_texts(str(path), stat.st_size, stat.st_mtime_ns)


def as_text(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """`text` with its special-token strings broken up, as the serving backend does (LlamaCppBackend.as_text).

    A tokenizer from `load_base` carries llama.cpp's list for its GGUF; any other uses its own special
    and added tokens.
    """
    from inference.backends.llama import neutralize, special_texts

    specials = getattr(tokenizer, SERVED_SPECIALS_ATTR, None)
    if specials is None:
        added = [t.content for t in tokenizer.added_tokens_decoder.values()]
        specials = special_texts([*tokenizer.all_special_tokens, *added])
    return neutralize(text, specials)


def chat_prompt(tokenizer: PreTrainedTokenizerBase, user_text: str, *, system: str | None = SYSTEM_PROMPT) -> str:
    """The prompt text llama.cpp serves for [system, user] (agent0's system prompt by default).

    `system=None` sends no system message (the template then adds its own default one, in both
    engines). The text ends with the assistant header, ready for the answer.
    """
    messages = [{"role": "user", "content": as_text(tokenizer, user_text)}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):
        raise TypeError(f"the chat template rendered {type(text).__name__}, expected text")
    return text


# --- internals ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _served_special_texts(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    import llama_cpp

    from inference.backends.llama import _control_token_texts

    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    try:
        return _control_token_texts(llm)
    finally:
        llm.close()


def _from_gguf(path: Path, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The slow path: transformers' own GGUF loader (dequantize; for llama, reverse the q/k permutation)."""
    common: dict[str, Any] = {"gguf_file": path.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **common)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=dtype, **common)
    # The weights are plain tensors now; drop the GGUF "quantization" marker so the model saves,
    # reloads and trains as an ordinary float model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cache_is_valid(folder: Path, spec: ModelSpec) -> bool:
    manifest = _manifest(folder)
    if manifest is None:
        return False
    expected = {"format": CACHE_FORMAT, "source_sha256": spec.sha256, "transformers": transformers.__version__}
    if any(manifest.get(key) != value for key, value in expected.items()):
        log.info("converted checkpoint %s is stale (%s); rebuilding it", folder, manifest)
        return False
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for name, digest in files.items():
        target = folder / name
        if not target.is_file() or sha256_file(target) != digest:
            log.warning("converted checkpoint %s: %s is missing or corrupt; rebuilding from the GGUF", folder, name)
            return False
    return True


def _build_cache(folder: Path, spec: ModelSpec, path: Path) -> None:
    started = time.perf_counter()
    model, tokenizer = _from_gguf(path, torch.float32)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {"format": CACHE_FORMAT, "source": path.name, "source_sha256": spec.sha256,
                    "transformers": transformers.__version__, "files": files}  # fmt: skip
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if folder.exists():
            if _cache_is_valid(folder, spec):
                return  # another process published the same conversion meanwhile
            shutil.rmtree(folder)
        try:
            staging.rename(folder)
        except OSError:
            # Another process published the same conversion first; keep theirs if it verifies.
            if not _cache_is_valid(folder, spec):
                raise IntegrityError(f"could not publish the converted checkpoint at {folder}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("converted %s to a transformers checkpoint at %s in %.1fs", path.name, folder,
             time.perf_counter() - started)  # fmt: skip
