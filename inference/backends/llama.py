"""llama.cpp backend (llama-cpp-python): GGUF models on the GPU when built with CUDA, else CPU."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from inference.backends.base import Backend, Generation, Messages
from inference.gpu import check_vram
from inference.integrity import verify_file

log = logging.getLogger(__name__)

# Model memory beyond the weights: KV cache and compute buffers, a rough allowance for the guard.
_OVERHEAD_BYTES = 256 * 1024**2


class LlamaCppBackend(Backend):
    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._llm: Any = None
        self.device = "cpu"

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
        log.info("loaded %s on %s in %.2fs", self.spec.alias, self.device, time.perf_counter() - started)

    def _require(self) -> Any:
        if self._llm is None:
            raise RuntimeError(f"model {self.spec.alias} is not loaded")
        return self._llm

    def generate(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Generation:
        started = time.perf_counter()
        out = self._require().create_chat_completion(
            messages=messages, max_tokens=max_tokens, temperature=temperature, **params
        )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Generation(
            text=(choice["message"].get("content") or "").strip(),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason") or "stop",
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def stream(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Iterator[str]:
        chunks = self._require().create_chat_completion(
            messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True, **params
        )
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "device": self.device}
