"""File integrity: a model file is used only when its size and SHA-256 match the registry."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """A model file is missing, truncated, or its hash differs from the registry."""


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def verify_file(path: Path, *, sha256: str, size: int, progress: Callable[[int], None] | None = None) -> None:
    """Raise IntegrityError naming the file (and both hashes) unless it is exactly the expected one."""
    if not path.is_file():
        raise IntegrityError(f"model file {path} does not exist (run: python manage.py prefetch_models)")
    actual_size = path.stat().st_size
    actual = sha256_file(path, progress)
    if actual_size != size:
        raise IntegrityError(
            f"model file {path} has {actual_size} bytes, expected {size} (truncated or wrong file): "
            f"sha256 {actual}, expected {sha256}; refusing to use it"
        )
    if actual != sha256:
        raise IntegrityError(
            f"model file {path} is corrupt: sha256 {actual} does not match the expected {sha256}; refusing to use it"
        )
