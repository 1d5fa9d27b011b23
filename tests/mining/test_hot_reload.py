"""(d) Two other processes hold their own index; a new mining run here reaches both without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from mining.runtime import pattern_lookup
from mining.services import MiningParams, run_mining
from tests.mining.conftest import MINING_REDIS_URL, log_interaction, requires_ml

ROOT = Path(__file__).resolve().parents[2]
AUSTRALIA = ["What is the capital of Australia?", "Which city is Australia's capital?",
             "What is the capital city of Australia?"]  # fmt: skip
JAPAN = ["What is the capital of Japan?", "Which city is Japan's capital?", "Name the capital city of Japan."]


class LookupProcess:
    """A `tests.mining.lookup_worker` process: its own Django, its own index, the same database and Redis."""

    def __init__(self, reload_interval_s: float | None) -> None:
        env = {**os.environ, "REDIS_URL": MINING_REDIS_URL, "DJANGO_SETTINGS_MODULE": "swarm_site.settings",
               "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}  # fmt: skip
        args = [sys.executable, "-m", "tests.mining.lookup_worker"]
        if reload_interval_s is not None:
            args.append(str(reload_interval_s))
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            raise AssertionError(f"lookup worker died: {self.proc.stderr.read()[-3000:]}")
        return json.loads(line)

    def ask(self, **command: Any) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def lookup(self, prompt: str) -> dict[str, Any]:
        return self.ask(op="lookup", prompt=prompt)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def processes():
    started: list[LookupProcess] = []
    yield started
    for proc in started:
        proc.close()


@requires_ml
@pytest.mark.django_db(transaction=True)  # committed rows: the other processes read the same database file
def test_other_processes_serve_a_new_head_without_restart(mining_redis, processes):
    for prompt in AUSTRALIA:
        log_interaction(prompt, "Canberra")
    first = run_mining(MiningParams())
    assert first.heads_created == 1

    eager = LookupProcess(reload_interval_s=0.0)  # checks the version on every lookup
    default = LookupProcess(reload_interval_s=None)  # the production default: at most once a second
    processes += [eager, default]
    assert default.ready["reload_interval_s"] == 1.0
    for proc in (eager, default):
        answer = proc.lookup("What's the capital of Australia?")
        assert answer["hit"]["answer"] == "Canberra" and answer["index_heads"] == 1
        assert answer["index_version"] == str(first.patterns_version)
        assert proc.lookup("What's the capital of Japan?")["hit"] is None  # not mined yet

    for prompt in JAPAN:
        log_interaction(prompt, "Tokyo")
    second = run_mining(MiningParams())
    assert second.heads_created == 1 and second.patterns_version == first.patterns_version + 1
    assert pattern_lookup("What's the capital of Japan?").answer == "Tokyo"  # this process too

    answer = eager.lookup("What's the capital of Japan?")
    assert answer["hit"]["answer"] == "Tokyo", answer
    assert answer["index_version"] == str(second.patterns_version) and answer["index_heads"] == 2
    assert answer["pid"] == eager.ready["pid"] and answer["rebuilds"] == 2  # same process, index rebuilt

    default.ask(op="sleep", s=1.1)  # its once-a-second version check is due on the next lookup
    answer = default.lookup("What's the capital of Japan?")
    assert answer["hit"]["answer"] == "Tokyo", answer
    assert answer["pid"] == default.ready["pid"] and answer["index_version"] == str(second.patterns_version)
