"""llama.cpp backend (llama-cpp-python): GGUF models on the GPU when built with CUDA, else CPU.

LoRA adapters (GGUF, training/gguf_lora.py) are applied per request on the loaded model, without
reloading it: `use_adapter` verifies the file's SHA-256, loads it once with `llama_adapter_lora_init`
(kept in a small LRU of loaded adapters, evicted ones freed with `llama_adapter_lora_free`) and
switches the context's adapter set with `llama_set_adapters_lora`. A switch drops the KV cache and
llama-cpp-python's token bookkeeping (`Llama.reset` + `llama_memory_clear`): the cached keys/values
were computed with the previous weights, and llama-cpp-python would otherwise reuse them for a
matching prompt prefix.
"""

from __future__ import annotations

import ctypes
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from inference.backends.base import AdapterRef, Backend, ContextWindowExceeded, Generation, Messages
from inference.gpu import check_vram
from inference.integrity import IntegrityError, verify_file

log = logging.getLogger(__name__)

# Model memory beyond the weights: KV cache and compute buffers, a rough allowance for the guard.
_OVERHEAD_BYTES = 256 * 1024**2
# Loaded adapters kept per backend (the active one is never evicted): stable + canary + one spare.
MAX_CACHED_ADAPTERS = 3


@dataclass
class _LoadedAdapter:
    ref: AdapterRef
    handle: Any  # llama_adapter_lora_p
    load_ms: float


class _TopTokenProbability:
    """A logits processor that leaves the logits alone and records, per step, the probability of the
    most likely token (the one greedy decoding takes): softmax max = 1 / sum(exp(logit - max))."""

    def __init__(self) -> None:
        self.log_probs: list[float] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        shifted = scores - scores.max()
        self.log_probs.append(-float(np.log(np.exp(shifted).sum())))
        return scores

    def summary(self) -> tuple[float | None, float | None]:
        if not self.log_probs:
            return None, None
        return math.exp(sum(self.log_probs) / len(self.log_probs)), math.exp(min(self.log_probs))


class _Prompt(Exception):
    """Not an error: how _PromptProbe hands the formatted prompt back."""

    def __init__(self, tokens: Any) -> None:
        super().__init__("prompt formatted")
        self.tokens = tokens


class _PromptProbe:
    """Stands in for the Llama in its own chat handler: the messages are formatted with the model's
    chat template and tokenized exactly as for a generation, which stops where the completion would
    start (`create_completion`, which the handler calls with the prompt's tokens)."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_completion(self, *, prompt: Any, **_: Any) -> Any:
        raise _Prompt(prompt)


ZERO_WIDTH_SPACE = "\u200b"


def _control_token_texts(llm: Any) -> tuple[str, ...]:
    """The texts of the model's control and user-defined tokens (17 for SmolLM2; ~35 ms over the vocab)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    texts = {
        llm.detokenize([token], special=True).decode("utf-8", "replace")
        for token in range(llama_cpp.llama_vocab_n_tokens(vocab))
        if llama_cpp.llama_vocab_get_attr(vocab, token) & special
    }
    return special_texts(texts)


def special_texts(texts: Iterable[str]) -> tuple[str, ...]:
    """The strings `neutralize` breaks up: those longer than one character, longest first."""
    return tuple(sorted({t for t in texts if len(t) > 1}, key=len, reverse=True))


def neutralize(text: str, specials: tuple[str, ...]) -> str:
    """`text` with each occurrence of a `specials` string broken after its first character."""
    if not text or not specials:
        return text
    for special in specials:
        if special in text:
            text = text.replace(special, special[0] + ZERO_WIDTH_SPACE + special[1:])
    return text


class LlamaCppBackend(Backend):
    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._llm: Any = None
        self.device = "cpu"
        self._adapters: OrderedDict[str, _LoadedAdapter] = OrderedDict()  # version -> loaded, LRU order
        self._active: AdapterRef | None = None
        self.max_cached_adapters = MAX_CACHED_ADAPTERS
        self._special_texts: tuple[str, ...] = ()

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        import llama_cpp

        path = self.spec.local_path()
        verify_file(path, sha256=self.spec.sha256, size=self.spec.size)
        params = self.spec.params
        n_gpu_layers = int(params.get("n_gpu_layers", -1) or 0)
        if llama_cpp.llama_supports_gpu_offload() and n_gpu_layers != 0:
            check_vram(needed_bytes=self.spec.size + _OVERHEAD_BYTES, limit_gb=settings.SWARM_VRAM_LIMIT_GB)
            self.device = "gpu"
        else:
            n_gpu_layers = 0
        started = time.perf_counter()
        self._llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=int(params.get("n_ctx", 2048)),
            n_gpu_layers=n_gpu_layers,
            n_threads=params.get("threads"),
            chat_format=params.get("chat_format"),
            seed=int(params.get("seed", 0)),
            verbose=False,
        )
        self._special_texts = _control_token_texts(self._llm)
        log.info("loaded %s on %s in %.2fs", self.spec.alias, self.device, time.perf_counter() - started)

    def _require(self) -> Any:
        if self._llm is None:
            raise RuntimeError(f"model {self.spec.alias} is not loaded")
        return self._llm

    def generate(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Generation:
        started = time.perf_counter()
        probe = _TopTokenProbability() if temperature == 0 and "logits_processor" not in params else None
        if probe is not None:
            import llama_cpp

            params["logits_processor"] = llama_cpp.LogitsProcessorList([probe])
        out = self._require().create_chat_completion(
            messages=self.as_text(messages), max_tokens=max_tokens, temperature=temperature, **params
        )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        confidence, least = probe.summary() if probe is not None else (None, None)
        return Generation(
            text=(choice["message"].get("content") or "").strip(),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason") or "stop",
            latency_ms=(time.perf_counter() - started) * 1000,
            token_confidence=confidence,
            min_token_prob=least,
        )

    def stream(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Iterator[str]:
        chunks = self._require().create_chat_completion(
            messages=self.as_text(messages), max_tokens=max_tokens, temperature=temperature, stream=True, **params
        )
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def count_prompt_tokens(self, messages: Messages) -> int:
        """How many tokens `messages` make once formatted for the model (what a generation reads)."""
        from llama_cpp import llama_chat_format

        llm = self._require()
        handler = (  # as Llama.create_chat_completion picks it
            llm.chat_handler
            or llm._chat_handlers.get(llm.chat_format)
            or llama_chat_format.get_chat_completion_handler(llm.chat_format)
        )
        try:
            handler(llama=_PromptProbe(llm), messages=self.as_text(messages), max_tokens=1)
        except _Prompt as formatted:
            prompt = formatted.tokens
            return len(prompt) if isinstance(prompt, list) else len(llm.tokenize(prompt.encode("utf-8"), special=True))
        raise RuntimeError(f"the chat handler of {self.spec.alias} never asked for a completion")

    def check_context(self, messages: Messages, *, max_tokens: int) -> int:
        """Prompt tokens + max_tokens must fit n_ctx (llama.cpp itself refuses only a prompt that fills
        the window, and silently shortens the completion instead)."""
        prompt_tokens = self.count_prompt_tokens(messages)
        n_ctx = self._require().n_ctx()
        if prompt_tokens + max_tokens > n_ctx:
            raise ContextWindowExceeded(n_ctx=n_ctx, prompt_tokens=prompt_tokens, max_tokens=max_tokens)
        return prompt_tokens

    def as_text(self, messages: Messages) -> Messages:
        """`messages` with every control token's text (`<|im_end|>`, ...) broken up by a zero-width space.

        The chat template's markers are tokenized as control tokens, and so would the same strings typed
        into a message: a client could close its own turn and open one for another role. Broken up, they
        are read as the plain text they are.
        """
        return [{**m, "content": neutralize(m["content"], self._special_texts)} for m in messages]

    def unload(self) -> None:
        if self._llm is not None:
            self._apply(None)
            for version in list(self._adapters):
                self._free(version)
            self._llm.close()
            self._llm = None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "device": self.device,
            "adapter": self._active.version if self._active else None,
            "adapters_loaded": list(self._adapters),
        }

    # --- LoRA adapters --------------------------------------------------------------------------

    @property
    def active_adapter(self) -> AdapterRef | None:
        return self._active

    def use_adapter(self, adapter: AdapterRef | None) -> None:
        """Apply `adapter` (None: the base model) for the next generations; a no-op when unchanged.

        A file that is missing or whose SHA-256 differs raises IntegrityError, and one llama.cpp
        cannot load raises RuntimeError; either way the backend keeps serving what it served.
        """
        self._require()
        if adapter == self._active:
            return
        if adapter is None:
            self._apply(None)
            return
        loaded = self._adapters.get(adapter.version)
        stale = None
        if loaded is None or (loaded.ref.sha256, loaded.ref.path) != (adapter.sha256, adapter.path):
            fresh = self._load_adapter(adapter)  # raises before anything changes
            # A version name now pointing at another file: the old one is replaced, never served.
            stale = self._adapters.pop(adapter.version, None)
            self._adapters[adapter.version] = loaded = fresh
        self._adapters.move_to_end(adapter.version)
        try:
            self._apply(adapter, loaded.handle)
        finally:
            if stale is not None and self._active is not stale.ref:
                self._release(stale)
        self._evict()

    def _load_adapter(self, ref: AdapterRef) -> _LoadedAdapter:
        import llama_cpp

        started = time.perf_counter()
        size = ref.path.stat().st_size if ref.path.is_file() else 0
        try:
            verify_file(ref.path, sha256=ref.sha256, size=size)
        except IntegrityError as exc:
            raise IntegrityError(f"adapter {ref.version}: {exc}") from None
        handle = llama_cpp.llama_adapter_lora_init(self._require().model, str(ref.path).encode("utf-8"))
        if not handle:
            raise RuntimeError(f"llama.cpp could not load adapter {ref.version} from {ref.path} "
                               f"(wrong base model or not a GGUF LoRA; see the llama.cpp log)")  # fmt: skip
        loaded = _LoadedAdapter(ref=ref, handle=handle, load_ms=(time.perf_counter() - started) * 1000)
        log.info("loaded adapter %s (%s) in %.0f ms", ref.version, ref.path.name, loaded.load_ms)
        return loaded

    def _apply(self, ref: AdapterRef | None, handle: Any = None) -> None:
        """Set the context's adapters to `ref` alone (or none) and drop the now stale KV cache."""
        import llama_cpp

        llm = self._require()
        if ref is None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 0)()
            scales = (ctypes.c_float * 0)()
            count = 0
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
            scales = (ctypes.c_float * 1)(ref.scale)
            count = 1
        if llama_cpp.llama_set_adapters_lora(llm.ctx, adapters, count, scales) != 0:
            raise RuntimeError(f"llama.cpp refused to set adapter {ref.version if ref else 'none'}")
        previous, self._active = self._active, ref
        # Keys/values computed under the previous weights must not be reused for a shared prefix.
        # (The backend never gives the Llama a prompt-state cache, `Llama.cache`, which would be stale too.)
        llm.reset()
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if memory is not None:
            llama_cpp.llama_memory_clear(memory, True)
        log.debug("adapter %s -> %s", previous.version if previous else "base", ref.version if ref else "base")

    def _evict(self) -> None:
        active = self._active.version if self._active else None
        for version in list(self._adapters):
            if len(self._adapters) <= self.max_cached_adapters:
                break
            if version != active:
                self._free(version)

    def _free(self, version: str) -> None:
        loaded = self._adapters.pop(version, None)
        if loaded is not None:
            self._release(loaded)

    @staticmethod
    def _release(loaded: _LoadedAdapter) -> None:
        import llama_cpp

        llama_cpp.llama_adapter_lora_free(loaded.handle)
        log.info("freed adapter %s", loaded.ref.version)
