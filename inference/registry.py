"""The model registry: `config/models.yaml` parsed into typed specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

BACKENDS = {"llama_cpp"}


class RegistryError(ValueError):
    """The registry file is missing, malformed, or names an unknown model."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "wheel" | "url" | "path"
    location: str  # requirement, URL or path
    member: str | None = None  # file inside the wheel

    def describe(self) -> str:
        return f"{self.kind}:{self.location}" + (f"#{self.member}" if self.member else "")


@dataclass(frozen=True)
class ModelSpec:
    alias: str
    source: ModelSource
    filename: str
    sha256: str
    size: int
    backend: str
    params: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    description: str = ""

    def local_path(self, model_dir: Path | None = None) -> Path:
        """Where the verified file lives (a `path` source is used where it is)."""
        if self.source.kind == "path":
            path = Path(self.source.location)
            return path if path.is_absolute() else Path(settings.BASE_DIR) / path
        return Path(model_dir or settings.SWARM_MODEL_DIR) / self.filename


@dataclass(frozen=True)
class Registry:
    default: str
    models: dict[str, ModelSpec]

    def get(self, alias: str | None = None) -> ModelSpec:
        name = alias or self.default
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise RegistryError(f"unknown model {name!r}; the registry has: {known}") from None


def _parse_source(alias: str, raw: Any) -> ModelSource:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise RegistryError(f"model {alias!r}: source must have exactly one of wheel, url, path")
    kind, value = next(iter(raw.items()))
    if kind == "wheel":
        if not isinstance(value, dict) or not value.get("requirement") or not value.get("member"):
            raise RegistryError(f"model {alias!r}: a wheel source needs requirement and member")
        return ModelSource("wheel", str(value["requirement"]), str(value["member"]))
    if kind == "url":
        if not str(value).startswith("https://"):
            raise RegistryError(f"model {alias!r}: url sources must be https://")
        return ModelSource("url", str(value))
    if kind == "path":
        return ModelSource("path", str(value))
    raise RegistryError(f"model {alias!r}: unknown source kind {kind!r}")


def _parse_model(raw: dict[str, Any]) -> ModelSpec:
    alias = raw.get("alias")
    if not alias:
        raise RegistryError("every model needs an alias")
    sha = str(raw.get("sha256", "")).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise RegistryError(f"model {alias!r}: sha256 must be 64 hex digits")
    backend = raw.get("backend", "llama_cpp")
    if backend not in BACKENDS:
        raise RegistryError(f"model {alias!r}: unknown backend {backend!r} (known: {sorted(BACKENDS)})")
    source = _parse_source(alias, raw.get("source"))
    filename = raw.get("filename") or Path(source.member or source.location).name
    try:
        size = int(raw["size"])
    except (KeyError, TypeError, ValueError):
        raise RegistryError(f"model {alias!r}: size (bytes) is required") from None
    return ModelSpec(
        alias=str(alias),
        source=source,
        filename=str(filename),
        sha256=sha,
        size=size,
        backend=backend,
        params=dict(raw.get("params") or {}),
        optional=bool(raw.get("optional", False)),
        description=str(raw.get("description", "")),
    )


def load_registry(path: Path | None = None) -> Registry:
    path = Path(path or settings.SWARM_MODELS_FILE)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"model registry {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"model registry {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise RegistryError(f"model registry {path} needs a 'models' list")
    models = {}
    for raw in data["models"]:
        spec = _parse_model(raw)
        if spec.alias in models:
            raise RegistryError(f"model {spec.alias!r} is listed twice in {path}")
        models[spec.alias] = spec
    default = data.get("default") or next(iter(models), "")
    if default not in models:
        raise RegistryError(f"default model {default!r} is not in {path}")
    return Registry(default=default, models=models)


def active_model() -> ModelSpec:
    """The model this process serves: `SWARM_MODEL` or the registry's default."""
    return load_registry().get(settings.SWARM_MODEL or None)
