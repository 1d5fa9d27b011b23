"""A separate process holding its own pattern index (tests/mining/test_hot_reload.py drives it over stdin).

Usage: python -m tests.mining.lookup_worker [RELOAD_INTERVAL_S]; one JSON command per line in, one JSON
answer per line out: {"op": "lookup", "prompt": ...} or {"op": "sleep", "s": ...}.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swarm_site.settings")


def main() -> None:
    import django

    django.setup()
    from mining import runtime

    interval = float(sys.argv[1]) if len(sys.argv) > 1 else None
    index = runtime.reset_index(interval)
    print(json.dumps({"ready": True, "pid": os.getpid(), "reload_interval_s": index.reload_interval_s}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "sleep":
            time.sleep(command["s"])
            answer: dict = {"slept": command["s"]}
        else:
            hit = runtime.pattern_lookup(command["prompt"])
            snap = runtime.get_index()._state
            answer = {
                "hit": hit.as_dict() if hit else None,
                "index_heads": len(snap.entries) if snap else None,
                "index_version": snap.version if snap else None,
                "rebuilds": runtime.get_index().counters["rebuilds"],
                "pid": os.getpid(),
            }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
