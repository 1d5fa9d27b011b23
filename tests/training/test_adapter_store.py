"""The adapter store (training/adapter_store.py): adapters' bytes in the database, fetched by a serving
worker whose SWARM_ADAPTER_DIR lacks the file or holds another, checked by SHA-256, written atomically."""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

import pytest

from inference.integrity import IntegrityError
from tests.training.adapter_factory import adapter
from training import adapter_store
from training.adapter_store import AdapterUnavailable, local_adapter
from training.models import AdapterBlob, AdapterVersion
from training.serving import adapter_ref

pytestmark = pytest.mark.django_db
BYTES = b"GGUF" + bytes(range(256)) * 64
OTHER = b"GGUF" + b"another adapter" * 100


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def folder(settings, tmp_path) -> Path:
    """This host's SWARM_ADAPTER_DIR: empty; the verified-file memo forgotten."""
    settings.SWARM_ADAPTER_DIR = tmp_path / "adapters"
    adapter_store._verified.clear()
    yield settings.SWARM_ADAPTER_DIR
    adapter_store._verified.clear()


def stored(number: int, data: bytes = BYTES) -> AdapterVersion:
    version = adapter(number)
    version.sha256, version.size = digest(data), len(data)
    version.save()
    AdapterBlob.objects.create(adapter=version, data=data)
    return version


def task(version: AdapterVersion, sha256: str | None = None) -> dict[str, str]:
    return {"version": version.version, "path": version.path, "sha256": sha256 or version.sha256}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_save_blob_keeps_the_file_and_refuses_another(tmp_path):
    version = adapter(1)
    version.sha256 = digest(BYTES)
    path = tmp_path / "adapter.gguf"
    path.write_bytes(BYTES)
    assert bytes(adapter_store.save_blob(version, path).data) == BYTES
    assert bytes(AdapterBlob.objects.get(adapter__number=1).data) == BYTES

    path.write_bytes(OTHER)
    other = adapter(2)
    other.sha256 = digest(BYTES)
    with pytest.raises(IntegrityError, match=digest(OTHER)):
        adapter_store.save_blob(other, path)
    assert not AdapterBlob.objects.filter(adapter=other).exists()


def test_a_missing_file_is_fetched_from_the_store(folder):
    version = stored(3)
    ref = adapter_ref(task(version))
    assert ref.path == folder / "lora-v3" / "adapter.gguf" and ref.sha256 == version.sha256
    assert ref.path.read_bytes() == BYTES
    assert leftovers(folder) == ["adapter.gguf"]  # no temporary file left beside it


def test_a_file_found_good_is_not_hashed_or_fetched_again(folder, monkeypatch, django_assert_num_queries):
    version = stored(4)
    local_adapter(version.version, version.path, version.sha256)
    hashed = []
    real = adapter_store.sha256_file
    monkeypatch.setattr(adapter_store, "sha256_file", lambda path: hashed.append(path) or real(path))
    with django_assert_num_queries(0):
        for _ in range(3):
            local_adapter(version.version, version.path, version.sha256)
    assert hashed == []
    # Replaced behind the worker's back (another size, mtime, inode): hashed again, and fetched again.
    path = folder / version.path
    path.write_bytes(OTHER)
    local_adapter(version.version, version.path, version.sha256)
    assert len(hashed) == 1 and path.read_bytes() == BYTES


def test_a_local_file_that_is_already_right_is_used_without_the_store(folder, django_assert_num_queries):
    path = folder / "lora-v5" / "adapter.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(OTHER)
    with django_assert_num_queries(0):
        assert local_adapter("lora-v5", "lora-v5/adapter.gguf", digest(OTHER)) == path


def test_a_corrupt_local_file_is_fetched_again(folder):
    version = stored(6)
    path = folder / version.path
    path.parent.mkdir(parents=True)
    path.write_bytes(BYTES[:100] + b"\x00" + BYTES[101:])  # one byte flipped, same size
    assert local_adapter(version.version, version.path, version.sha256) == path
    assert path.read_bytes() == BYTES and leftovers(folder) == ["adapter.gguf"]


def test_a_blob_whose_hash_differs_is_refused_and_nothing_is_written(folder):
    version = stored(7)
    asked = digest(OTHER)
    with pytest.raises(IntegrityError) as refused:
        local_adapter(version.version, version.path, asked)
    assert version.sha256 in str(refused.value) and asked in str(refused.value)
    assert leftovers(folder) == []
    # A corrupt local file stays as it was, too.
    path = folder / version.path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"corrupt")
    with pytest.raises(IntegrityError):
        local_adapter(version.version, version.path, asked)
    assert path.read_bytes() == b"corrupt" and leftovers(folder) == ["adapter.gguf"]


def test_a_version_the_store_does_not_have_is_unavailable(folder):
    with pytest.raises(AdapterUnavailable, match="lora-v8"):
        local_adapter("lora-v8", "lora-v8/adapter.gguf", digest(BYTES))
    with pytest.raises(AdapterUnavailable):
        local_adapter("not-a-version", "x/adapter.gguf", digest(BYTES))
    assert leftovers(folder) == [] and adapter_ref(None) is None


def test_a_path_outside_the_adapter_dir_is_not_written(folder, tmp_path):
    version = stored(9)
    with pytest.raises(IntegrityError, match="outside"):
        local_adapter(version.version, "../escaped.gguf", version.sha256)
    assert not (tmp_path / "escaped.gguf").exists()


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_no_partial_file(folder, monkeypatch, failing):
    version = stored(10)
    path = folder / version.path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError, match="No space"):
        local_adapter(version.version, version.path, version.sha256)
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and leftovers(folder) == ["adapter.gguf"]
    path.unlink()
    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError):
        local_adapter(version.version, version.path, version.sha256)
    monkeypatch.undo()
    assert leftovers(folder) == []


def test_the_migration_backfills_versions_whose_file_is_there(folder):
    from django.apps import apps

    migration = importlib.import_module("training.migrations.0004_adapterblob")
    good, missing, changed = adapter(11), adapter(12), adapter(13)
    for version, data in ((good, BYTES), (changed, OTHER)):
        path = folder / version.path
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    for version in (good, missing, changed):
        version.sha256 = digest(BYTES)
        version.save()
    migration.backfill(apps, None)
    assert list(AdapterBlob.objects.values_list("adapter__number", flat=True)) == [11]
    assert bytes(AdapterBlob.objects.get().data) == BYTES
    migration.backfill(apps, None)  # again: nothing twice
    assert AdapterBlob.objects.count() == 1
