"""The cluster report's summary: the drills' request counts added up, and the broker failover's seconds."""

from tests.cluster.report import summary


def test_the_summary_adds_up_the_drills():
    drills = {
        "link_cut": {"sent": 6, "answered": 5, "gateway_timeouts": 1, "lost": 0, "redelivered": 0},
        "sentinel_failover": {"sent": 500, "answered": 439, "lost": 0, "failover_s": 2.4},
        "rabbitmq_worker_loss": {"sent": 3, "answered": 3, "redelivered": 1, "lost": 0},
    }
    assert summary(drills) == {"sent": 509, "answered": 447, "redelivered": 1, "gateway_timeouts": 1, "lost": 0,
                               "failover_s": 2.4, "drills": sorted(drills)}  # fmt: skip
    assert summary({})["failover_s"] is None
