"""Distillation works: after training on cloud answers, the served model (llama.cpp + the GGUF LoRA)
answers those prompts and unseen paraphrases of them correctly more often, and under guarded
distilled trust it escalates them less, while no near miss gets the trained answer trusted (sure
tokens alone would trust some: the adapter is as sure of the trained answer to a near miss).
The full-size figures: bench/distill.py -> reports/distill_<date>.json."""

from __future__ import annotations

import pytest

from bench.distill import run

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.timeout(1800)]


def test_a_distilled_adapter_answers_more_and_escalates_less(tmp_path):
    report = run(n_groups=12, seen=3, params_overrides={"max_steps": 60}, out_dir=tmp_path)
    base, tuned = report["arms"]["base"], report["arms"]["adapter"]
    assert report["loss_last"] < report["loss_first"] / 3
    for split in ("trained", "heldout"):
        assert tuned[split]["accuracy"] > base[split]["accuracy"], (split, base[split], tuned[split])
        assert tuned[split]["escalation_rate"] < base[split]["escalation_rate"], (split, tuned[split])
    assert base["trained"]["escalation_rate"] == 1.0  # the base model's facts are never trusted
    assert tuned["trained"]["accuracy"] >= 0.8
    assert tuned["trained"]["trusted_wrong_rate"] <= 0.05 and tuned["heldout"]["trusted_wrong_rate"] <= 0.05
    assert tuned["near_miss"]["sure_false_hits"] == 0, tuned["near_miss"]  # guarded: confidently wrong 0
