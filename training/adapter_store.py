"""The adapter store: every adapter's GGUF bytes in the database (`AdapterBlob`), which every host reaches.

The trainer writes an adapter's bytes in the transaction that records its `AdapterVersion` (`save_blob`).
A serving worker resolves an arm's file under its own SWARM_ADAPTER_DIR (`local_adapter`): when the file
is missing, or its SHA-256 is not the one the request asks for, the bytes are fetched by version from
the store, checked against that SHA-256 (a mismatch is refused and nothing is written), written to a
temporary file beside the target and renamed over it (readers see the old file or the whole new one,
never a part). A file found good is remembered with its inode, size and modification time, so the next
request costs one stat(), not a re-hash; a file replaced or modified since is hashed again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from inference.integrity import IntegrityError, sha256_file
from training.models import AdapterBlob, AdapterVersion
from training.serving import adapter_dir

log = logging.getLogger(__name__)


class AdapterUnavailable(IntegrityError):
    """The adapter is neither on this host's disk (with the SHA-256 asked for) nor in the store."""


# (absolute path, expected sha256) -> the stat signature of the file found good.
_verified: dict[tuple[str, str], tuple[int, int, int, int]] = {}


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def save_blob(adapter: AdapterVersion, path: Path) -> AdapterBlob:
    """Store the file at `path` as `adapter`'s bytes; refused unless it has the adapter's SHA-256.
    Call it in the transaction that creates `adapter`, so that no version is recorded without them."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != adapter.sha256:
        raise IntegrityError(f"adapter {adapter.version}: {path} has sha256 {actual}, expected {adapter.sha256}; "
                             f"not stored")  # fmt: skip
    return AdapterBlob.objects.create(adapter=adapter, data=data)


def fetch_blob(version: str) -> bytes | memoryview:
    """`version`'s bytes from the store (the whole adapter, read into memory; PostgreSQL's driver gives
    a memoryview, SQLite bytes: both are hashed and written as they are, without another copy)."""
    number = version.removeprefix(AdapterVersion.VERSION_PREFIX)
    data = None
    if number.isdigit():
        data = AdapterBlob.objects.filter(adapter__number=int(number)).values_list("data", flat=True).first()
    if data is None:
        raise AdapterUnavailable(f"adapter {version}: no such version in the adapter store (database)")
    return data


def write_atomic(target: Path, data: bytes | memoryview) -> None:
    """`data` at `target`: written to a temporary file in the same folder, then renamed over it. On any
    failure the temporary file is removed and `target` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def fetch_into(version: str, sha256: str, target: Path) -> None:
    """Fetch `version` from the store and put it at `target`, refused (nothing written) unless its
    bytes have `sha256`."""
    data = fetch_blob(version)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise IntegrityError(f"adapter {version} in the store has sha256 {actual}, but {sha256} was asked for; "
                             f"refusing it (nothing written to {target})")  # fmt: skip
    write_atomic(target, data)
    log.info("fetched adapter %s from the store into %s (%d bytes)", version, target, len(data))


def local_adapter(version: str, path: str, sha256: str) -> Path:
    """The file of adapter `version` on this host (`path` relative to SWARM_ADAPTER_DIR), with `sha256`:
    the one already there, or fetched from the store. Raises IntegrityError (AdapterUnavailable when
    the store has no such version) and database errors; the file at `path` is then left as it was."""
    target = adapter_dir() / path
    key = (str(target), sha256)
    found = _signature(target)
    if found is not None and _verified.get(key) == found:
        return target
    if found is not None:
        actual = sha256_file(target)
        if actual == sha256:
            _verified[key] = found
            return target
        log.warning("adapter %s: %s has sha256 %s, expected %s; fetching it from the store",
                    version, target, actual, sha256)  # fmt: skip
    if not target.resolve().is_relative_to(adapter_dir().resolve()):
        raise IntegrityError(f"adapter {version}: {path!r} is outside SWARM_ADAPTER_DIR; not written")
    fetch_into(version, sha256, target)
    signature = _signature(target)
    if signature is not None:
        _verified[key] = signature
    return target
