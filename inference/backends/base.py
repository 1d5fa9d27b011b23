"""The backend interface every model server implements: load, generate, stream, unload."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.registry import ModelSpec

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    latency_ms: float
    # Greedy decoding only: the geometric mean of the top token's probability at each step, and the
    # least of them (None when sampled or not measured). How sure the model was of every token.
    token_confidence: float | None = None
    min_token_prob: float | None = None
    # With `logprobs` asked for: OpenAI's logprobs.content, one entry per token of `text`.
    logprobs: list[dict[str, Any]] | None = None


class InvalidOption(ValueError):
    """A generation option the model cannot take (a token id outside its vocabulary): the API's 400 on `param`."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param

    def as_dict(self) -> dict[str, str]:
        return {"param": self.param, "message": str(self)}


class ContextWindowExceeded(ValueError):
    """The prompt, with the tokens asked for its completion, does not fit the model's context window."""

    def __init__(self, n_ctx: int, prompt_tokens: int, max_tokens: int) -> None:
        self.n_ctx, self.prompt_tokens, self.max_tokens = n_ctx, prompt_tokens, max_tokens
        super().__init__(self.describe())

    def as_dict(self) -> dict[str, int]:
        return {"n_ctx": self.n_ctx, "prompt_tokens": self.prompt_tokens, "max_tokens": self.max_tokens}

    def describe(self, what: str = "messages") -> str:
        """OpenAI's wording, naming the request's `what` (messages, prompt)."""
        head = f"This model's maximum context length is {self.n_ctx} tokens. However, "
        if self.prompt_tokens >= self.n_ctx:
            return f"{head}your {what} resulted in {self.prompt_tokens} tokens. Please reduce the length of the {what}."
        total = self.prompt_tokens + self.max_tokens
        return (f"{head}you requested {total} tokens ({self.prompt_tokens} in the {what}, {self.max_tokens} in the "
                f"completion). Please reduce the length of the {what} or completion.")  # fmt: skip


@dataclass(frozen=True)
class AdapterRef:
    """A LoRA adapter file for the served base model, and the scale to apply it at (1.0 = as trained).

    `sha256` is checked before the file is loaded; `version` names it in caches, logs and describe().
    """

    version: str
    path: Path
    sha256: str
    scale: float = 1.0


class Backend(ABC):
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @property
    @abstractmethod
    def loaded(self) -> bool: ...

    @abstractmethod
    def load(self) -> None:
        """Verify the file against the registry and load it. Raises IntegrityError on a bad file."""

    @abstractmethod
    def generate(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Generation: ...

    @abstractmethod
    def stream(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Iterator[str]:
        """Yield text pieces as the model produces them."""

    def stream_generate(
        self, messages: Messages, *, max_tokens: int, temperature: float, on_piece: Callable[[str], bool], **params: Any
    ) -> Generation:
        """Generate while handing each piece to `on_piece`; stop early when it returns False."""
        started = time.perf_counter()
        pieces: list[str] = []
        finish = "length"
        for piece in self.stream(messages, max_tokens=max_tokens, temperature=temperature, **params):
            pieces.append(piece)
            if not on_piece(piece):
                finish = "cancelled"
                break
        else:
            finish = "stop" if len(pieces) < max_tokens else "length"
        return Generation(
            text="".join(pieces).strip(),
            prompt_tokens=0,  # not reported by a stream; the non-streamed path counts them
            completion_tokens=len(pieces),
            finish_reason=finish,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def complete_text(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        on_piece: Callable[[str], bool] | None = None,
        **params: Any,
    ) -> Generation:
        """A raw text completion of `prompt` (no chat template), as generated; with `on_piece`, each piece
        goes to it as it comes (False from it stops). Raises ContextWindowExceeded before generating
        when the prompt and `max_tokens` do not fit the model's context window."""
        raise NotImplementedError(f"the {self.spec.backend} backend cannot complete raw text")

    def check_context(self, messages: Messages, *, max_tokens: int) -> int | None:
        """The prompt tokens of `messages` as the model would read them; raises ContextWindowExceeded
        when they and `max_tokens` do not fit its context window. None: this backend cannot count."""
        return None

    @abstractmethod
    def unload(self) -> None: ...

    def generate_base(self, messages: Messages, *, max_tokens: int, temperature: float, **params: Any) -> Generation:
        """`generate` by the base model alone, whatever adapter is on (a backend without adapters: `generate`)."""
        return self.generate(messages, max_tokens=max_tokens, temperature=temperature, **params)

    def use_adapter(self, adapter: AdapterRef | None) -> None:
        """Serve the next generations with `adapter` on the base model (None: the base model alone).

        Cheap when nothing changes; raises IntegrityError for a file whose hash differs (and keeps
        serving what it served). Backends that cannot apply adapters raise NotImplementedError.
        """
        if adapter is not None:
            raise NotImplementedError(f"the {self.spec.backend} backend cannot apply LoRA adapters")

    def describe(self) -> dict[str, Any]:
        return {"alias": self.spec.alias, "backend": self.spec.backend, "loaded": self.loaded}
