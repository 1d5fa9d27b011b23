"""bench.hotpath's figures: the cache-hit ratios are paired round by round, and a case's figures are
its median round."""

from bench.hotpath import _paired, figures, median_round


def test_a_case_is_its_median_round_and_keeps_every_round():
    runs = [{"rps": 300.0, "n": 1}, {"rps": 100.0, "n": 2}, {"rps": 200.0, "n": 3}]
    assert median_round(runs) == {"rps": 200.0, "n": 3, "rounds_rps": [300.0, 100.0, 200.0]}
    assert median_round([{"rps": 5.0}]) == {"rps": 5.0}


def test_ratios_are_the_median_of_the_rounds_ratios():
    # The machine slowed down in round 2: the per-round ratio stays 0.5, a ratio of medians would not.
    ours = {"rps": 300.0, "rounds_rps": [500.0, 100.0, 300.0]}
    anchor = {"rps": 1000.0, "rounds_rps": [1000.0, 200.0, 600.0]}
    assert _paired(ours, anchor) == 0.5
    assert _paired({"rps": 10.0}, {"rps": 40.0}) == 0.25  # one run each
    assert _paired(ours, {"rps": 0.0}) is None
    got = figures({"orchestrate_cache_hit": ours, "anchor": anchor})["ratios"]["cache_hit_rps_vs_anchor"]
    assert got["orchestrate"] == 0.5
