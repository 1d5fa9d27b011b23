"""A model file is used only when it is exactly the registry's file: prefetch and loader refuse others."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inference.backends.llama import LlamaCppBackend
from inference.fetch import fetch_model
from inference.integrity import IntegrityError
from inference.registry import load_registry

SPEC = load_registry().get("smollm2-135m")
REAL = SPEC.local_path()


@pytest.fixture
def corrupt_dir(tmp_path) -> Path:
    """A model dir holding the default model with one byte flipped in the middle."""
    target = tmp_path / SPEC.filename
    shutil.copyfile(REAL, target)
    with open(target, "r+b") as handle:
        handle.seek(SPEC.size // 2)
        byte = handle.read(1)
        handle.seek(SPEC.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return tmp_path


def test_the_prefetched_default_model_verifies():
    result = fetch_model(SPEC, model_dir=REAL.parent, show_progress=False)
    assert result.status == "present"


def test_prefetch_refuses_a_flipped_byte_naming_file_and_both_hashes(corrupt_dir, settings):
    settings.SWARM_MODEL_DIR = corrupt_dir
    with pytest.raises(CommandError) as caught:
        call_command("prefetch_models", SPEC.alias, "--no-progress")
    message = str(caught.value)
    assert str(corrupt_dir / SPEC.filename) in message
    assert SPEC.sha256 in message
    actual, expected = re.findall(r"\b[0-9a-f]{64}\b", message)
    assert expected == SPEC.sha256 and actual != expected


def test_loader_refuses_a_flipped_byte_before_loading(corrupt_dir, settings):
    settings.SWARM_MODEL_DIR = corrupt_dir
    backend = LlamaCppBackend(SPEC)
    with pytest.raises(IntegrityError, match="corrupt") as caught:
        backend.load()
    assert str(corrupt_dir / SPEC.filename) in str(caught.value) and SPEC.sha256 in str(caught.value)
    assert not backend.loaded


def test_loader_refuses_a_truncated_file(tmp_path, settings):
    target = tmp_path / SPEC.filename
    with open(REAL, "rb") as src, open(target, "wb") as out:
        out.write(src.read(SPEC.size - 10))
    settings.SWARM_MODEL_DIR = tmp_path
    with pytest.raises(IntegrityError, match="truncated"):
        LlamaCppBackend(SPEC).load()


def test_a_download_with_the_wrong_hash_never_lands(tmp_path):
    wrong = replace(SPEC, sha256="0" * 64)
    with pytest.raises(IntegrityError):
        fetch_model(wrong, model_dir=tmp_path, show_progress=False)
    assert not (tmp_path / SPEC.filename).exists()
    assert not list(tmp_path.glob("**/*.part"))


def test_an_optional_model_that_fails_is_skipped_with_a_warning(tmp_path, caplog):
    from inference.fetch import prefetch

    broken = replace(SPEC, alias="broken", optional=True, sha256="1" * 64)
    results = prefetch([broken], model_dir=tmp_path, show_progress=False)
    assert [r.status for r in results] == ["skipped"]
    assert "skipping optional model broken" in caplog.text


def test_loader_serves_the_verified_model(settings):
    backend = LlamaCppBackend(SPEC)
    backend.load()
    try:
        gen = backend.generate([{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0.0)
        assert gen.text and gen.completion_tokens > 0
        pieces = list(backend.stream([{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0.0))
        assert len(pieces) > 1
    finally:
        backend.unload()
