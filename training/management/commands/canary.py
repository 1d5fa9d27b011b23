"""`manage.py canary weight 5 | promote | rollback | judge | status` (make set-canary-weight, make promote-canary)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from training import rollout


class Command(BaseCommand):
    help = "Run the LoRA canary: set its weight, promote it, roll it back, judge it, or show the serving state."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["weight", "promote", "rollback", "judge", "status"])
        parser.add_argument("percent", nargs="?", type=int, help="for `weight`: percent of clients, 0..100")

    def handle(self, *args, action: str, percent: int | None, **options):
        try:
            if action == "weight":
                if percent is None:
                    raise CommandError("give the weight in percent: manage.py canary weight 5")
                result = rollout.set_canary_weight(percent)
            elif action == "promote":
                result = rollout.promote_canary()
            elif action == "rollback":
                result = rollout.rollback_canary()
            elif action == "judge":
                result = rollout.judge_canary()
            else:
                result = rollout.describe(rollout.snapshot_of(rollout.serving_state()))
        except rollout.RolloutError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(result, indent=2, default=str))
