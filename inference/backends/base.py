"""The backend interface every model server implements: load, generate, stream, unload."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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

    @abstractmethod
    def unload(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {"alias": self.spec.alias, "backend": self.spec.backend, "loaded": self.loaded}
