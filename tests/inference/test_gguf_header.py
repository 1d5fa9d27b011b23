"""The loader reads the GGUF header and refuses a file that names another model than the registry."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from inference.backends.llama import LlamaCppBackend
from inference.gguf_header import GgufFormatError, ModelIdentityError, check_identity, read_metadata
from inference.registry import ModelSource, ModelSpec, load_registry

U32, U64, STRING, ARRAY = 4, 10, 8, 9


def s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def kv(key: str, kind: int, value: bytes) -> bytes:
    return s(key) + struct.pack("<I", kind) + value


def header(*pairs: bytes, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, 0, len(pairs)) + b"".join(pairs)


def string_array(*items: str) -> bytes:
    return struct.pack("<IQ", STRING, len(items)) + b"".join(s(item) for item in items)


# Keys of every shape before the two asked for: they must be skipped, not misread.
BEFORE = (
    kv("general.alignment", U32, struct.pack("<I", 32)),
    kv("tokenizer.ggml.tokens", ARRAY, string_array("<|im_start|>", "hello", "")),
    kv("tokenizer.ggml.scores", ARRAY, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.5, -1.0, 2.0)),
    kv("nested", ARRAY, struct.pack("<IQ", ARRAY, 2) + string_array("a") + struct.pack("<IQ", U64, 1) + bytes(8)),
    kv("general.size", U64, struct.pack("<Q", 2**40)),
)
GOOD = header(*BEFORE, kv("general.architecture", STRING, s("qwen2")), kv("general.name", STRING, s("Tiny Q")))


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(GOOD + bytes(64))  # what would follow: tensor infos and data
    return path


def test_a_matching_header_passes_and_every_value_type_is_skipped(tiny):
    assert check_identity(tiny, architecture="qwen2", name="Tiny Q") == {
        "general.architecture": "qwen2",
        "general.name": "Tiny Q",
    }
    assert read_metadata(tiny, ["general.size", "general.alignment"]) == {
        "general.size": 2**40,
        "general.alignment": 32,
    }


def test_nothing_is_read_when_the_registry_pins_nothing(tmp_path):
    assert check_identity(tmp_path / "absent.gguf", architecture=None, name=None) == {}


@pytest.mark.parametrize(
    ("architecture", "name", "found"),
    [("llama", "Tiny Q", "'qwen2', expected 'llama'"), ("qwen2", "Other", "'Tiny Q', expected 'Other'")],
)
def test_a_mismatch_is_refused_naming_file_expected_and_found(tiny, architecture, name, found):
    with pytest.raises(ModelIdentityError, match="refusing to load") as caught:
        check_identity(tiny, architecture=architecture, name=name)
    assert str(tiny) in str(caught.value) and found in str(caught.value)


def test_a_missing_key_is_a_mismatch(tmp_path):
    path = tmp_path / "nameless.gguf"
    path.write_bytes(header(kv("general.architecture", STRING, s("qwen2"))))
    with pytest.raises(ModelIdentityError, match=r"general\.name is missing, expected 'Tiny Q'"):
        check_identity(path, architecture="qwen2", name="Tiny Q")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"PK\x03\x04" + bytes(60), "not the GGUF magic"),
        (b"", "not the GGUF magic"),
        (header(kv("general.name", STRING, s("x")), version=1), "GGUF version 1"),
        (GOOD[:-5], "ends inside its header|only .* left"),
        (header(s("general.name") + struct.pack("<I", 99)), "unknown value type 99"),
    ],
    ids=["zip", "empty", "version-1", "truncated", "bad-type"],
)
def test_a_file_that_is_no_readable_gguf_is_refused(tmp_path, content, reason):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(GgufFormatError, match=reason):
        check_identity(path, architecture="qwen2", name="Tiny Q")


def test_the_reader_agrees_with_the_gguf_package(tmp_path):
    """A header written by gguf's own writer, with arrays of every kind ahead of the name."""
    path = tmp_path / "written.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_array("tokenizer.ggml.tokens", ["a", "bb", "ccc"])
    writer.add_array("tokenizer.ggml.token_type", [1, 2, 3])
    writer.add_array("float.list", [0.25, 0.5])
    writer.add_bool("a.flag", True)
    writer.add_float64("a.double", 1.5)
    writer.add_int64("a.long", -3)
    writer.add_name("Written By Gguf")
    writer.add_tensor("t", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert read_metadata(path, ["general.architecture", "general.name", "a.long", "a.double", "a.flag"]) == {
        "general.architecture": "llama",
        "general.name": "Written By Gguf",
        "a.long": -3,
        "a.double": 1.5,
        "a.flag": True,
    }


def test_the_loader_refuses_a_verified_file_of_another_model_before_llama_cpp_reads_it(tiny):
    data = tiny.read_bytes()
    spec = ModelSpec(
        alias="tiny", source=ModelSource("path", str(tiny)), filename=tiny.name,
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), backend="llama_cpp",
        architecture="llama", gguf_name="Tiny Q",
    )  # fmt: skip
    backend = LlamaCppBackend(spec)
    with pytest.raises(ModelIdentityError, match=r"general\.architecture is 'qwen2', expected 'llama'"):
        backend.load()
    assert not backend.loaded


@pytest.mark.parametrize("alias", ["smollm2-135m", "qwen2.5-coder-0.5b"])
def test_the_registry_names_what_the_prefetched_files_hold(alias):
    spec = load_registry().get(alias)
    path = spec.local_path()
    if not path.is_file():
        pytest.skip(f"{path} is not prefetched")
    assert spec.architecture and spec.gguf_name
    check_identity(path, architecture=spec.architecture, name=spec.gguf_name)
    with pytest.raises(ModelIdentityError, match=str(path)):
        check_identity(path, architecture=spec.architecture, name="another model")
