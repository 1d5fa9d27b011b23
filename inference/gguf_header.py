"""Read a GGUF file's metadata header (no dependency beyond the standard library).

The serving workers have llama-cpp-python but not the `gguf` package, and llama.cpp would load the
whole file before telling us what it is. This reads only the header, and only until the keys asked
for are found (`general.*` comes first in practice: a few hundred bytes):

    magic "GGUF" | version u32 (2 or 3) | tensor_count u64 | kv_count u64 | kv pairs ...
    kv pair: key (string) | value type u32 | value
    string:  length u64 | UTF-8 bytes
    array:   element type u32 | count u64 | elements

All numbers little-endian. Every value type is understood, so any key's value can be skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from inference.integrity import IntegrityError

MAGIC = b"GGUF"
VERSIONS = (2, 3)
ARCHITECTURE = "general.architecture"
NAME = "general.name"

# value type -> struct format of one scalar (8: string, 9: array are read by hand)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_KEY = 1 << 16  # a longer key is a corrupt header, not a key
_MAX_DEPTH = 8  # arrays of arrays of ...


class GgufFormatError(IntegrityError):
    """The file is not a GGUF file this reader understands, or its header is cut short."""


class ModelIdentityError(IntegrityError):
    """The GGUF header names another architecture or model than the registry entry."""


class _Header:
    def __init__(self, handle: IO[bytes], path: Path) -> None:
        self.handle = handle
        self.path = path
        self.remaining = path.stat().st_size

    def fail(self, what: str) -> GgufFormatError:
        return GgufFormatError(f"{self.path} is not a readable GGUF file: {what}")

    def read(self, count: int) -> bytes:
        if count > self.remaining:
            raise self.fail(f"the header wants {count} bytes, only {self.remaining} are left")
        data = self.handle.read(count)
        if len(data) != count:
            raise self.fail("the file ends inside its header")
        self.remaining -= count
        return data

    def skip(self, count: int) -> None:
        if count > self.remaining:
            raise self.fail(f"the header wants {count} bytes, only {self.remaining} are left")
        self.handle.seek(count, 1)
        self.remaining -= count

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self, limit: int | None = None) -> str:
        length = self.scalar("<Q")
        if limit is not None and length > limit:
            raise self.fail(f"a key of {length} bytes")
        return self.read(length).decode("utf-8", "replace")

    def skip_string(self) -> None:
        self.skip(self.scalar("<Q"))

    def value_type(self) -> int:
        kind = self.scalar("<I")
        if kind not in _SCALARS and kind not in (_STRING, _ARRAY):
            raise self.fail(f"unknown value type {kind}")
        return kind

    def value(self, kind: int) -> Any:
        """A scalar or string value; an array is skipped (None): the keys read here are not arrays."""
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            self.skip_value(kind)
            return None
        return self.scalar(_SCALARS[kind])

    def skip_value(self, kind: int, depth: int = 0) -> None:
        if kind == _STRING:
            self.skip_string()
        elif kind == _ARRAY:
            if depth >= _MAX_DEPTH:
                raise self.fail(f"arrays nested more than {_MAX_DEPTH} deep")
            element = self.value_type()
            count = self.scalar("<Q")
            if element in _SCALARS:
                self.skip(count * struct.calcsize(_SCALARS[element]))
            else:
                for _ in range(count):
                    self.skip_value(element, depth + 1)
        else:
            self.skip(struct.calcsize(_SCALARS[kind]))


def read_metadata(path: Path, keys: Iterable[str] = (ARCHITECTURE, NAME)) -> dict[str, Any]:
    """The values of `keys` in the GGUF header of `path` (a key the file lacks is absent).

    Raises GgufFormatError for a file that is not GGUF v2/v3 or whose header is cut short.
    """
    path = Path(path)
    wanted = set(keys)
    found: dict[str, Any] = {}
    with open(path, "rb", buffering=1 << 16) as handle:
        header = _Header(handle, path)
        magic = handle.read(4)
        header.remaining -= len(magic)
        if magic != MAGIC:
            raise header.fail(f"it starts with {magic!r}, not the GGUF magic {MAGIC!r}")
        version = header.scalar("<I")
        if version not in VERSIONS:
            raise header.fail(f"GGUF version {version} (this reader knows {', '.join(map(str, VERSIONS))})")
        header.scalar("<Q")  # tensor count
        pairs = header.scalar("<Q")
        for _ in range(pairs):
            if not wanted - found.keys():
                break
            key = header.string(limit=_MAX_KEY)
            kind = header.value_type()
            if key in wanted:
                found[key] = header.value(kind)
            else:
                header.skip_value(kind)
    return found


def check_identity(path: Path, *, architecture: str | None, name: str | None) -> dict[str, Any]:
    """Refuse a GGUF whose general.architecture / general.name differ from the expected ones.

    A None expectation is not checked; with both None the file is not opened. Returns what was read.
    Raises ModelIdentityError naming the file, what was expected and what was found, or
    GgufFormatError when the file is no GGUF at all.
    """
    expected = {ARCHITECTURE: architecture, NAME: name}
    expected = {key: value for key, value in expected.items() if value is not None}
    if not expected:
        return {}
    found = read_metadata(path, expected)
    wrong = [key for key, value in expected.items() if found.get(key) != value]
    if wrong:
        detail = "; ".join(
            f"{key} is {found[key]!r}, expected {expected[key]!r}"
            if key in found
            else f"{key} is missing, expected {expected[key]!r}"
            for key in wrong
        )
        raise ModelIdentityError(f"model file {path} is not the registry's model: {detail}; refusing to load it")
    return found
