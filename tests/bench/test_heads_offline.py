"""bench/heads_offline.py: the exact heads on the Titanic suite, in-process, per part."""

from __future__ import annotations

import json

import pytest

from bench import heads_offline


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heads_offline")
    baseline, out = folder / "before.json", folder / "after.json"
    baseline.write_text(json.dumps({part: {"items": 1, "answered": 0, "correct": 0, "confidently_wrong": 0}
                                    for part in ("tuning", "heldout", "overall")} | {"label": "old"}))  # fmt: skip
    code = heads_offline.main(["--out", str(out), "--baseline", str(baseline)])
    return code, json.loads(out.read_text())


def test_the_exact_heads_are_never_confidently_wrong_on_the_suite(run):
    code, report = run
    assert code == 0
    for part in ("tuning", "heldout", "overall"):
        figures = report[part]
        assert figures["confidently_wrong"] == 0, (part, figures["by_category"])
        assert figures["correct"] == figures["answered"] > 0
    assert report["tuning"]["items"] + report["heldout"]["items"] == report["overall"]["items"] == 380
    assert report["baseline"]["label"] == "old" and report["baseline"]["heldout"]["answered"] == 0


def test_held_out_items_are_counted_never_shown(run):
    _, report = run
    held_out = [item for item in report["items"] if item["part"] == "heldout"]
    assert held_out and not any({"answer", "reason", "prompt"} & set(item) for item in held_out)
