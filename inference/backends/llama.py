"""llama.cpp backend (llama-cpp-python): GGUF models on the GPU when built with CUDA, else CPU.

LoRA adapters (GGUF, training/gguf_lora.py) are applied per request on the loaded model, without
reloading it: `use_adapter` verifies the file's SHA-256, loads it once with `llama_adapter_lora_init`
(kept in a small LRU of loaded adapters, evicted ones freed with `llama_adapter_lora_free`) and
switches the context's adapter set with `llama_set_adapters_lora`. A switch drops the KV cache and
llama-cpp-python's token bookkeeping (`Llama.reset` + `llama_memory_clear`): the cached keys/values
were computed with the previous weights, and llama-cpp-python would otherwise reuse them for a
matching prompt prefix. A greedy generation (temperature 0) reads its prompt in blocks cut before each
message (`message_cuts`), so that its text and token probabilities depend on the prompt alone, not on
the request served before it.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from inference.backends.base import (
    AdapterRef,
    Backend,
    ContextWindowExceeded,
    Generation,
    InvalidOption,
    Messages,
)
from inference.gguf_header import check_identity
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


class _TokenTrace:
    """A logits processor that leaves the logits alone and records, per step, the log probability of
    the most likely token (how sure greedy decoding was: softmax max = 1 / sum(exp(logit - max))) and,
    with `top` set (logprobs asked for), each sampled token's log probability and the `top` best.

    A step's sampled token shows in the next step's input ids; the last one is read off the text
    (`openai_logprobs`), since no step follows it.
    """

    def __init__(self, top: int | None = None) -> None:
        self.top = top
        self.log_probs: list[float] = []
        self.picked: list[tuple[int, float, list[tuple[int, float]]]] = []  # token, logprob, alternatives
        self._pending: Any = None  # the last step's log-softmax, until its token is known

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        shifted = scores - scores.max()
        log_total = float(np.log(np.exp(shifted).sum()))
        self.log_probs.append(-log_total)
        if self.top is not None:
            if self._pending is not None:
                self._pick(int(input_ids[-1]))
            self._pending = (shifted - log_total).astype(np.float32)
        return scores

    def _pick(self, token: int) -> None:
        import numpy as np

        row, self._pending = self._pending, None
        best: list[tuple[int, float]] = []
        if self.top:
            ids = np.argpartition(row, -self.top)[-self.top :]
            best = sorted(((int(i), float(row[i])) for i in ids), key=lambda pair: -pair[1])
        self.picked.append((token, float(row[token]), best))

    def summary(self) -> tuple[float | None, float | None]:
        if not self.log_probs:
            return None, None
        return math.exp(sum(self.log_probs) / len(self.log_probs)), math.exp(min(self.log_probs))

    def openai_logprobs(self, llm: Any, text: str) -> list[dict[str, Any]]:
        """OpenAI's logprobs.content for the generated `text` (before any stripping): the recorded
        tokens while they are part of it, then the last step's token for what the text still holds."""
        target = text.encode("utf-8")
        entries, produced = [], b""
        for token, logprob, best in self.picked:
            piece = llm.detokenize([token])
            if not target.startswith(produced + piece):
                break  # a stop sequence cut here
            produced += piece
            entries.append(_logprob_entry(llm, piece, logprob, best))
        rest = target[len(produced) :]
        if rest and self._pending is not None:  # the last token (max_tokens reached)
            tail = llm.tokenize(rest, add_bos=False, special=False)[:1]
            if tail:
                self._pick(tail[0])
                token, logprob, best = self.picked[-1]
                entries.append(_logprob_entry(llm, llm.detokenize([token]), logprob, best))
        return entries


def _logprob_entry(llm: Any, piece: bytes, logprob: float, best: list[tuple[int, float]]) -> dict[str, Any]:
    def token_text(raw: bytes) -> dict[str, Any]:
        return {"token": raw.decode("utf-8", "replace"), "bytes": list(raw)}

    return {**token_text(piece), "logprob": logprob,
            "top_logprobs": [{**token_text(llm.detokenize([i])), "logprob": lp} for i, lp in best]}  # fmt: skip


def _choice_text(choice: dict[str, Any]) -> str:
    """The text of a llama-cpp-python choice: a chat message, a chat stream's delta, or a completion's text."""
    if "text" in choice:
        return choice["text"] or ""
    return (choice.get("message") or choice.get("delta") or {}).get("content") or ""


class _LogitBias:
    """OpenAI's logit_bias: added to the logits of the named token ids before sampling."""

    def __init__(self, bias: dict[int, float]) -> None:
        self.ids = list(bias)
        self.values = list(bias.values())

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        scores[self.ids] += self.values
        return scores


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


def model_threads(registry_threads: int | None = None) -> int:
    """llama.cpp's CPU threads for one serving process: SWARM_MODEL_THREADS, else the registry's `threads`,
    else the cores this process may use shared among the serving processes (SWARM_MODEL_SLOTS).

    llama.cpp's own default is half the cores (for hyperthreaded desktops): on a 2-core box that is one
    thread, and decoding is bound by reading the weights for every token, so the second core sat idle
    while chat queued (Qwen2.5-Coder-0.5B in one process: one thread 56 ms/token, two 35 ms/token; the
    soak's chat, reports/soak_*.json, stopped being refused)."""
    if settings.SWARM_MODEL_THREADS:
        return settings.SWARM_MODEL_THREADS
    if registry_threads:
        return int(registry_threads)
    # The cores this process may run on (a cgroup's or taskset's), where the platform says; else all of them.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, settings.SWARM_MODEL_SLOTS))


def message_cuts(tokens: list[int], is_control: Callable[[int], bool], bos: int) -> list[int]:
    """Where a greedy prompt is cut into blocks before the generation reads the rest: before each message
    after the first but the last two, found as the chat template's first control token other than BOS
    (Qwen's and SmolLM2's <|im_start|>) met again. The generation reads the last message and the
    assistant's header in one batch. A cut is where the prompt's own tokens say, so a prompt sharing the
    system message (or earlier turns) with the one before reuses those blocks; a raw prompt without
    markers is read whole."""
    start = next((t for t in tokens if t != bos and is_control(t)), None)
    if start is None:
        return []
    return [i for i in range(1, len(tokens)) if tokens[i] == start][:-1]


class LlamaCppBackend(Backend):
    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._llm: Any = None
        self.device = "cpu"
        self._adapters: OrderedDict[str, _LoadedAdapter] = OrderedDict()  # version -> loaded, LRU order
        self._active: AdapterRef | None = None
        self.max_cached_adapters = MAX_CACHED_ADAPTERS
        self._special_texts: tuple[str, ...] = ()
        self._blocks_upto = 0  # the cache's first tokens read in message_cuts' blocks (_read_in_blocks)

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        import llama_cpp

        path = self.spec.local_path()
        verify_file(path, sha256=self.spec.sha256, size=self.spec.size)
        # The header says what the file is: a registry entry naming another model is refused here.
        check_identity(path, architecture=self.spec.architecture, name=self.spec.gguf_name)
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
            n_threads=model_threads(params.get("threads")),
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
        return self._complete(messages, max_tokens=max_tokens, temperature=temperature, **params)

    def stream_generate(
        self, messages: Messages, *, max_tokens: int, temperature: float, on_piece: Callable[[str], bool], **params: Any
    ) -> Generation:
        return self._complete(messages, max_tokens=max_tokens, temperature=temperature, on_piece=on_piece, **params)

    def stream(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Iterator[str]:
        chunks = self._require().create_chat_completion(
            messages=self.as_text(messages), max_tokens=max_tokens, temperature=temperature, stream=True, **params
        )
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def _sampling(self, params: dict[str, Any]) -> tuple[dict[str, Any], _TokenTrace | None]:
        """llama-cpp-python's arguments for the generation options (inference/backends/base.py
        `generate`), and the trace recording logprobs when they were asked for."""
        import llama_cpp

        llm = self._require()
        logprobs = params.pop("logprobs", None)
        grammar = params.pop("grammar", None)
        bias = params.pop("logit_bias", None)
        processors = list(params.pop("logits_processor", None) or [])
        if bias:
            bias = {int(token): float(value) for token, value in bias.items()}
            if outside := [t for t in bias if not 0 <= t < llm.n_vocab()]:
                raise InvalidOption("logit_bias", f"token id {outside[0]} is not in the vocabulary of "
                                    f"{self.spec.alias} (0 to {llm.n_vocab() - 1})")  # fmt: skip
            processors.insert(0, _LogitBias(bias))  # llama-cpp-python's own logit_bias drops other processors
        trace = _TokenTrace(top=logprobs) if logprobs is not None or params.get("temperature") == 0 else None
        if trace is not None:
            processors.append(trace)
        if processors:
            params["logits_processor"] = llama_cpp.LogitsProcessorList(processors)
        if grammar:
            params["grammar"] = llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)
        return params, trace

    def _complete(
        self,
        messages: Messages,
        *,
        max_tokens: int,
        temperature: float,
        on_piece: Callable[[str], bool] | None = None,
        **params: Any,
    ) -> Generation:
        """One generation; with `on_piece`, each piece goes to it as it comes (False from it stops)."""
        llm = self._require()

        def start(**sampling: Any) -> Any:
            return llm.create_chat_completion(messages=self.as_text(messages), max_tokens=max_tokens, **sampling)

        return self._run(start, temperature=temperature, on_piece=on_piece, params=params,
                         tokens=lambda: self.prompt_tokens(messages), strip=True)  # fmt: skip

    def complete_text(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        on_piece: Callable[[str], bool] | None = None,
        **params: Any,
    ) -> Generation:
        """A raw text completion of `prompt`, without the chat template; the text is returned as generated
        (leading space included). Control-token strings typed in the prompt are read as plain text
        (tokenized with special=False). Raises ContextWindowExceeded before generating when the prompt
        and `max_tokens` do not fit the context window."""
        llm = self._require()
        tokens = self.text_tokens(prompt)
        if len(tokens) + max_tokens > llm.n_ctx():
            raise ContextWindowExceeded(n_ctx=llm.n_ctx(), prompt_tokens=len(tokens), max_tokens=max_tokens)

        def start(**sampling: Any) -> Any:
            return llm.create_completion(prompt=tokens, max_tokens=max_tokens, **sampling)

        return self._run(start, temperature=temperature, on_piece=on_piece, params=params,
                         tokens=lambda: tokens, strip=False)  # fmt: skip

    def text_tokens(self, prompt: str) -> list[int]:
        """`prompt` as a raw completion reads it: the model's BOS when it adds one, control strings as text."""
        return self._require().tokenize(prompt.encode("utf-8"), add_bos=True, special=False)

    def _run(
        self,
        start: Callable[..., Any],
        *,
        temperature: float,
        on_piece: Callable[[str], bool] | None,
        params: dict[str, Any],
        tokens: Callable[[], list[int]],
        strip: bool,
    ) -> Generation:
        """Run one llama-cpp-python generation (`start`, given the sampling arguments and `stream`), chat
        or raw text alike: with `on_piece`, each piece goes to it as it comes (False from it stops)."""
        started = time.perf_counter()
        wants_logprobs = params.get("logprobs") is not None
        params, trace = self._sampling({**params, "temperature": temperature})
        llm = self._require()
        if temperature == 0:
            self._read_in_blocks(tokens())
        else:
            self._blocks_upto = 0  # a sampled request reuses and overwrites the cache its own way
        out = start(stream=on_piece is not None, **params)
        if on_piece is None:
            choice = out["choices"][0]
            raw = _choice_text(choice)
            usage = out.get("usage") or {}
            prompt_count = int(usage.get("prompt_tokens", 0))
            completion_tokens = int(usage.get("completion_tokens", 0))
            finish = choice.get("finish_reason") or "stop"
        else:
            pieces: list[str] = []
            finish = "stop"
            for chunk in out:
                choice = chunk["choices"][0]
                piece = _choice_text(choice)
                if piece:
                    pieces.append(piece)
                    if not on_piece(piece):
                        finish = "cancelled"
                        break
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            raw = "".join(pieces)
            prompt_count = len(tokens())  # a stream does not report them
            completion_tokens = len(pieces)
        confidence, least = trace.summary() if trace is not None and temperature == 0 else (None, None)
        return Generation(
            text=raw.strip() if strip else raw,
            prompt_tokens=prompt_count,
            completion_tokens=completion_tokens,
            finish_reason=finish,
            latency_ms=(time.perf_counter() - started) * 1000,
            token_confidence=confidence,
            min_token_prob=least,
            logprobs=trace.openai_logprobs(llm, raw) if wants_logprobs and trace is not None else None,
        )

    def count_prompt_tokens(self, messages: Messages) -> int:
        """How many tokens `messages` make once formatted for the model (what a generation reads)."""
        return len(self.prompt_tokens(messages))

    def prompt_tokens(self, messages: Messages) -> list[int]:
        """The tokens of `messages` once formatted with the model's chat template (what a generation reads)."""
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
            return list(prompt) if isinstance(prompt, list) else llm.tokenize(prompt.encode("utf-8"), special=True)
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

    def generate_base(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Generation:
        """One generation by the base model while an adapter is on: the adapter is taken off for it and put
        back after (each switch drops the KV cache: the prompt is read again, tens of ms on a small model)."""
        active = self._active
        if active is None:
            return self.generate(messages, max_tokens=max_tokens, temperature=temperature, **params)
        self._apply(None)
        try:
            return self.generate(messages, max_tokens=max_tokens, temperature=temperature, **params)
        finally:
            self._apply(active, self._adapters[active.version].handle)

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
        self._forget_prompts()
        log.debug("adapter %s -> %s", previous.version if previous else "base", ref.version if ref else "base")

    def _is_control(self, token: int) -> bool:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self._require().model)
        return bool(llama_cpp.llama_vocab_get_attr(vocab, token) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL)

    def _read_in_blocks(self, tokens: list[int]) -> None:
        """Read `tokens` into the KV cache in the blocks `message_cuts` sets, reusing the blocks already
        read that way, and leave what follows the last cut to the generation.

        A greedy answer and its token probabilities must be a function of the prompt alone. llama.cpp's
        results depend on how a prompt is cut into batches (a small batch runs other kernels, which
        round differently): reusing whatever prefix was cached, "Which playwright wrote Hamlet?" gave
        the same answer with least token probability 0.6460 alone and 0.6285 after "Which playwright
        wrote Macbeth?", around the trust thresholds fitted to it (config/models.yaml `trust`). Cut where
        the prompt's own tokens say (before each message), every block is computed from the same tokens
        in the same batch whether it was cached or not (tests/inference/test_greedy_fresh_cache.py), and
        the system message is still read once for many requests."""
        llm = self._require()
        usable = min(llm.n_tokens, self._blocks_upto)
        same = 0
        for cached, token in zip(llm.input_ids[:usable].tolist(), tokens, strict=False):
            if cached != token:
                break
            same += 1
        cuts = message_cuts(tokens, self._is_control, llm.token_bos())
        keep = max((cut for cut in cuts if cut <= same), default=0)
        if keep == 0:
            self._forget_prompts()
        else:
            llm.n_tokens = keep  # the next eval drops the cache beyond it
        begin = keep
        for cut in cuts:
            if cut > keep:
                llm.eval(tokens[begin:cut])
                begin = cut
        self._blocks_upto = begin

    def _forget_prompts(self) -> None:
        """Drop the KV cache and llama-cpp-python's record of the tokens in it: the next prompt is read
        whole, from position 0."""
        import llama_cpp

        llm = self._require()
        self._blocks_upto = 0
        llm.reset()
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if memory is not None:
            llama_cpp.llama_memory_clear(memory, True)

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
