"""The backend interface every model server implements: load, generate, stream, unload."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
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

    @abstractmethod
    def unload(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {"alias": self.spec.alias, "backend": self.spec.backend, "loaded": self.loaded}
