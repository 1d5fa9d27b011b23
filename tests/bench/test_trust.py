"""bench/trust.py: the calibration arithmetic (no model): fitted on the tuning part only, judged on both."""

from __future__ import annotations

from bench.trust import MIN_TRUSTED, Answer, calibrate, fit, outcome, trusted


def ans(
    key: str, part: str, least: float, correct: bool, *, agrees: bool | None = None, finish: str = "stop"
) -> Answer:
    return Answer("m", key, part, "fact", "x", correct, least, least, finish, 1.0, agrees)


def test_the_threshold_is_the_lowest_with_no_wrong_tuning_answer_trusted():
    answers = [ans(f"r{n}", "tuning", 0.8 + n / 100, True) for n in range(MIN_TRUSTED)]
    answers += [ans("w", "tuning", 0.75, False), ans("r-low", "tuning", 0.5, True)]
    assert fit(answers, "min_token_prob") == 0.8
    # a held-out answer never moves the threshold, however wrong
    assert fit([*answers, ans("h", "heldout", 0.9, False)], "min_token_prob") == 0.8


def test_too_few_trusted_answers_fit_nothing():
    answers = [ans(f"r{n}", "tuning", 0.9, True) for n in range(MIN_TRUSTED - 1)] + [ans("w", "tuning", 0.8, False)]
    assert fit(answers, "min_token_prob") is None


def test_outcome_counts_what_the_rule_trusts_on_all_items():
    answers = [ans("a", "heldout", 0.9, True), ans("b", "heldout", 0.9, False), ans("c", "heldout", 0.1, False),
               ans("d", "heldout", 0.95, True, finish="length")]  # fmt: skip
    got = outcome(answers, "min_token_prob", 0.8)
    assert (got["trusted"], got["trusted_wrong"], got["coverage"], got["confidently_wrong_rate"]) == (2, 1, 0.5, 0.25)
    assert got["precision"] == 0.5 and got["wrong_examples"][0]["key"] == "b"


def test_agreement_rules_need_the_other_model_to_agree():
    assert trusted(ans("a", "tuning", 0.9, True, agrees=True), "min_token_prob+agreement", 0.5)
    assert not trusted(ans("a", "tuning", 0.9, True, agrees=False), "min_token_prob+agreement", 0.5)


def test_calibrate_recommends_the_rule_trusting_most_tuning_answers_and_reports_heldout():
    answers = [ans(f"r{n}", "tuning", 0.9, True) for n in range(MIN_TRUSTED + 2)]
    answers += [ans("w", "tuning", 0.6, False), ans("h1", "heldout", 0.95, True), ans("h2", "heldout", 0.92, False)]
    result = calibrate(answers)
    assert "min_token_prob+agreement" not in result["rules"]  # one model: no agreement to measure
    best = result["recommended"]
    assert best["threshold"] == 0.9 and best["tuning"]["trusted_wrong"] == 0
    assert (best["heldout"]["trusted"], best["heldout"]["trusted_wrong"]) == (2, 1)


def test_rescore_judges_stored_answers_again_and_fits_anew(tmp_path):
    import json
    from dataclasses import asdict

    from bench.trust import load_items, rescore

    items = [i for i in load_items() if i.key.startswith("paraphrases:") and i.part == "tuning"][: MIN_TRUSTED + 1]
    stored = [ans(i.key, i.part, 0.9, False) for i in items]
    for a, item in zip(stored, items, strict=True):
        a.text = item.reference  # right, though the stored report said wrong
    stored.append(ans("paraphrases:no-such-group:0", "tuning", 0.99, True))  # no longer an item: dropped
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"max_tokens": 64, "items": len(stored), "models": {
        "m": {"latency_ms": {"p50": 1.0, "p95": 2.0}, "answers": [asdict(a) for a in stored]}}}))  # fmt: skip
    body = rescore(path)["models"]["m"]
    assert body["judged_differently"] == len(items) and len(body["answers"]) == len(items)
    assert body["calibration"]["recommended"]["tuning"]["trusted"] == len(items)
