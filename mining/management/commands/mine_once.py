"""python manage.py mine_once: run the pattern-mining job now, in this process, and say what it did."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from mining.services import MiningParams, run_mining, summary


class Command(BaseCommand):
    help = "Mine pattern heads from recent trusted interactions now (same job as the 6-hourly beat task)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=None, help="window in days (default 7)")
        parser.add_argument("--limit", type=int, default=None, help="newest interactions considered (20000)")
        parser.add_argument("--min-cluster-size", type=int, default=None, help="distinct prompts per cluster (3)")
        parser.add_argument("--json", action="store_true", help="print the run summary as JSON")

    def handle(self, *args, **options):
        params = MiningParams.from_settings(
            window_days=options["days"], limit=options["limit"], min_cluster_size=options["min_cluster_size"]
        )
        result = summary(run_mining(params))
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        style = self.style.SUCCESS if result["status"] == "ok" else self.style.WARNING
        self.stdout.write(style(
            f"mining run {result['run']}: {result['status']}; {result['interactions_seen']} trusted interactions, "
            f"{result['distinct_prompts']} distinct prompts, {result['clusters']} clusters "
            f"({result['clusters_agreeing']} agreeing); heads created {result['heads_created']}, "
            f"updated {result['heads_updated']}, retired {result['heads_retired']}; "
            f"hits flushed {result['hits_flushed']}; patterns version {result['patterns_version']}"
        ))  # fmt: skip
        if result["timings"]:
            self.stdout.write("timings: " + ", ".join(f"{k} {v}" for k, v in result["timings"].items()))
        for note in result["notes"]:
            self.stdout.write(f"  {note}")
