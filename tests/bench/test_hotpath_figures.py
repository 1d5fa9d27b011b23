"""bench.hotpath's figures: the cache-hit ratios are paired round by round, and a case's figures are
its median round."""

import os
import time

from bench.hotpath import _paired, figures, median_round
from bench.titanic.live import cpu_ms_per_request, machine_busy_s


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


def test_the_machine_busy_clock_counts_this_process_work() -> None:
    # The hot path's "where the CPU went" subtracts every named process from the machine's busy time: the
    # busy clock must see this process burn CPU (all of it at least: the machine is shared), and not idle time.
    busy_before, own_before, wall_before = machine_busy_s(), time.process_time(), time.perf_counter()
    while time.process_time() - own_before < 0.3:
        pass
    busy, own = machine_busy_s() - busy_before, time.process_time() - own_before
    assert busy >= own - 0.05
    assert busy <= (time.perf_counter() - wall_before) * (os.cpu_count() or 1) + 0.05


def test_cpu_per_request_is_the_difference_of_two_snapshots() -> None:
    start = {"web": {"cpu_s_total": 10.0}, "redis": {"cpu_s_total": 1.0}, "gone": {"cpu_s_total": 5.0}}
    end = {"web": {"cpu_s_total": 12.0}, "redis": {"cpu_s_total": 1.5}, "new": {"cpu_s_total": 3.0}}
    assert cpu_ms_per_request(start, end, 1000) == {"web": 2.0, "redis": 0.5}
