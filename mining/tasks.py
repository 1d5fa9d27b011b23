"""Thin task: the mining job runs on the cpu queue (route `mining.tasks.mine_patterns` there), every 6 hours."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from mining.services import MiningParams, run_mining, summary


@shared_task(name="mining.tasks.mine_patterns", ignore_result=False)
def mine_patterns(**overrides: Any) -> dict[str, Any]:
    """Run the mining job once; keyword arguments override `MiningParams` fields (e.g. window_days=3)."""
    return summary(run_mining(MiningParams.from_settings(**overrides)))
