"""The operators' run-book, command for command, in its order, on a stack its own `make up` starts
(private Redis, own ports and var dir; the models of SWARM_MODEL_DIR). Each step's pass line is
checked. What needs a GPU or a container engine is left out (`make docker-build-all` says why it
cannot run; the gate prints `n/a (no GPU)`). `make test-runbook` runs it (about 10 minutes here).

Two steps run shorter than the run-book writes them, and say so: the soak runs 10 s instead of 5
minutes (its exit status must still follow its targets), and the gate runs its loader stage alone
(the whole gate runs the whole test suite)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.stack import ROOT, PrivateRedis, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.runbook, pytest.mark.timeout(2400)]


class RunBook:
    def __init__(self, tmp: Path, redis: PrivateRedis) -> None:
        self.port, self.flower, self.exporter = free_port(), free_port(), free_port()
        self.var = tmp / "var"
        self.url = f"http://127.0.0.1:{self.port}"
        self.queue_file = tmp / "lora_queue.json"
        self.queue_file.write_text("[]")
        self.redis_url = f"{redis.url.rsplit('/', 1)[0]}/0"
        self.env = {
            **os.environ, "SWARM_PORT": str(self.port), "FLOWER_PORT": str(self.flower),
            "SWARM_EXPORTER_PORT": str(self.exporter), "SWARM_VAR_DIR": str(self.var), "REDIS_URL": self.redis_url,
            "SWARM_MODEL_DIR": os.environ.get("SWARM_MODEL_DIR", str(ROOT / "var" / "models")),
            "SWARM_LORA_QUEUE_FILE": str(self.queue_file),
            "SWARM_TEST_REDIS_URL": f"{redis.url.rsplit('/', 1)[0]}/5",
        }  # fmt: skip
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the stack's own, under its var dir
        self.env.pop("SWARM_API_KEY", None)
        self.transcript: list[str] = []

    def sh(self, command: str, *, timeout: float = 600, env: dict[str, str] | None = None) -> tuple[int, str]:
        started = time.perf_counter()
        proc = subprocess.run(command, shell=True, cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        out = proc.stdout + proc.stderr
        self.transcript.append(f"$ {command}  # exit {proc.returncode}, {time.perf_counter() - started:.1f} s\n"
                               f"{out[-1500:]}")  # fmt: skip
        return proc.returncode, out

    def passes(self, command: str, prefix: str, **kwargs) -> str:
        code, out = self.sh(command, **kwargs)
        line = pass_line(out, prefix)
        assert code == 0 and line.startswith(f"PASS {prefix}"), out[-3000:]
        return line

    def metrics(self, url: str | None = None) -> str:
        return requests.get(url or f"{self.url}/metrics", timeout=10).text


def pass_line(out: str, prefix: str) -> str:
    lines = [line for line in out.splitlines() if re.match(rf"(PASS|FAIL) {re.escape(prefix)}\b", line)]
    return lines[-1] if lines else ""


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def book(tmp_path):
    redis = PrivateRedis()
    redis.start()
    book = RunBook(tmp_path, redis)
    made = {p for p in (ROOT / "reports").glob("*")}
    try:
        yield book
    finally:
        book.sh("make --no-print-directory down", timeout=120)
        redis.stop()
        for report in set((ROOT / "reports").glob("*")) - made:  # what the titanic and soak steps wrote
            report.unlink()
        print("\n".join(book.transcript))


def test_the_run_book_command_for_command(book):
    # assets
    book.passes("make --no-print-directory init", "init")
    code, out = book.sh("make --no-print-directory init")  # idempotent
    assert code == 0 and "present" in pass_line(out, "init"), out
    # containers: no engine here, and it says so
    code, out = book.sh("make --no-print-directory docker-build-all", timeout=60)
    if code != 0:
        assert pass_line(out, "docker-build-all").startswith("FAIL docker-build-all:") and "engine" in out, out

    # stack up
    book.passes("make --no-print-directory up", "up", timeout=300)
    code, out = book.sh("make --no-print-directory ps")
    for service in ("web", "worker-gpu", "worker-cpu", "worker-train", "beat", "flower", "exporter"):
        assert re.search(rf"^{service}\s+running\b", out, flags=re.M), out

    # unit tier: `pytest -q`, 0 failures in under 15 s
    started = time.perf_counter()
    code, out = book.sh(".venv/bin/python -m pytest -q -p no:cacheprovider", timeout=120)
    elapsed = time.perf_counter() - started
    assert code == 0 and re.search(r"\d+ passed", out) and " failed" not in out, out[-2000:]
    assert elapsed < 15, f"pytest -q took {elapsed:.1f} s"

    # loader smoke, live smoke
    assert "RSS" in book.passes("make --no-print-directory smoke-loader", "smoke-loader")
    live = book.passes(f"make --no-print-directory smoke-live URL={book.url}", "smoke-live")
    assert "10/10 calls ok" in live and "first token" in live

    # cache check: the same question twice, the second from the cache in 40 ms or less (the pair is
    # asked again, up to twice, when a busy moment of this shared 2-core machine slows the second)
    pairs = []
    for _ in range(3):
        timings = []
        for _ in range(2):
            code, out = book.sh(f"curl -s -o /dev/null -w '%{{time_total}}' -X POST {book.url}/orchestrate "
                                "-H 'Content-Type: application/json' -d '{\"prompt\":\"2+2?\"}'")  # fmt: skip
            timings.append(float(out.strip()))
        pairs.append(timings)
        if timings[1] <= 0.040:
            break
    book.transcript.append(f"# cache check, seconds per call: {pairs}")
    assert pairs[-1][1] <= 0.040, pairs
    code, out = book.sh(f"redis-cli -u {book.redis_url} KEYS 'cache:*'")
    assert re.search(r"^cache:[0-9a-f]{64}$", out, flags=re.M), out
    assert metric(book.metrics(), "swarm_cache_hit_ratio") >= 0.3

    # cost guard: the first call over the per-request cap aborts the run; the reset clears the day
    code, out = book.sh("make --no-print-directory micro STRICT_COST=on", timeout=600,
                        env={"SWARM_CLOUD_ENABLED": "true", "openai_cost": "0.05"})  # fmt: skip
    assert code != 0 and "cost per request exceeded 0.02" in pass_line(out, "micro"), out[-3000:]
    code, out = book.sh("make --no-print-directory budget-reset")
    assert code == 0 and "budget reset for" in out, out

    # titanic
    code, out = book.sh("make --no-print-directory titanic BUDGET=0.10", timeout=900)
    report = ROOT / "reports" / f"titanic_{datetime.now(UTC):%Y%m%d}.json"
    assert code == 0 and report.is_file(), out[-3000:]
    assert len(json.loads(report.read_text())["items"]) == 380

    # soak (10 s here) with a key of its own: a report, and the exit status follows its targets
    code, key = book.sh(".venv/bin/python manage.py create_api_key soak --rate 0 --concurrency 0")
    assert code == 0, key
    code, out = book.sh(f"make --no-print-directory soak-live QPS=120 DURATION=10s URL={book.url}", timeout=300,
                        env={"SWARM_API_KEY": key.split()[-1]})  # fmt: skip
    soak = json.loads((ROOT / "reports" / f"soak_{datetime.now(UTC):%Y%m%d}.json").read_text())
    assert soak["requests"] > 0 and (code == 0) == all(v == "pass" for v in soak["checks"].values()), out[-2000:]

    # alerts
    code, out = book.sh("make --no-print-directory test-alerts-e2e", timeout=300)
    assert code == 0 and "ALERT DRILL" in out, out[-2000:]
    book.passes("make --no-print-directory clear-chaos", "clear-chaos", timeout=60)

    # nightly dry run: a line in the queue file, the trainer picks it up, reload latest with the local token
    version_before = metric(book.metrics(), "swarm_lora_version") or 0
    drill = {"name": "dev_test", "dataset": ["What is 7*8?", "What is 13*17?"], "params": {"max_steps": 2}}
    book.queue_file.write_text(json.dumps([drill]))
    written = time.monotonic()
    trainer_log = book.var / "log" / "worker-train.log"
    wait_for(lambda: json.loads(book.queue_file.read_text()) == [], timeout=30, what="the queue file is taken")
    assert time.monotonic() - written <= 30
    wait_for(lambda: "trained lora-v1" in trainer_log.read_text(errors="replace"), timeout=600, interval=0.5,
             what="trained in the trainer's log")  # fmt: skip
    trained_s = time.monotonic() - written
    book.transcript.append(f"# queue file line -> 'trained lora-v1' in the trainer's log: {trained_s:.1f} s")
    # the run-book's 30 s, on the profile this test serves (the tiny one; Qwen on a CPU: README run-book)
    assert trained_s <= 30, f"'trained' {trained_s:.1f} s after the queue file line (run-book: within 30 s)"
    # then the gate scores it on the held-out log (the Titanic run above filled it): the job is done
    wait_for(lambda: "training job dev_test done" in trainer_log.read_text(errors="replace"), timeout=600,
             interval=0.5, what="the gate's verdict in the trainer's log")  # fmt: skip
    book.transcript.append(f"# ... and the job done, its gate scored: {time.monotonic() - written:.1f} s")
    reload = f'curl -s -X POST -H "Authorization: Bearer $(cat {book.var}/arbiter_token)" {book.url}/admin/reload'
    code, out = book.sh(f"{reload}?lora=latest")
    answer = json.loads(out)
    if "error" in answer:  # the two-prompt adapter failed its gate: the documented override
        assert answer["error"]["code"] == "no_adapter_passed_gate", answer
        code, out = book.sh(f"{reload}'?lora=lora-v1&force=true'")
        answer = json.loads(out)
        assert answer["forced"] is True and answer["gate"]["passed"] is False, answer
    assert answer["stable"] == "lora-v1", answer
    wait_for(lambda: (metric(book.metrics(), "swarm_lora_version") or 0) > version_before, timeout=10,
             what="swarm_lora_version goes up")  # fmt: skip

    # canary: a canary at 5 %, then promoted
    code, out = book.sh(".venv/bin/python manage.py shell -c \"from training import rollout; "
                        "from training.models import AdapterVersion as A; rollout.reload_adapter('base'); "
                        "rollout.start_canary(A.objects.get(number=1))\"")  # fmt: skip
    assert code == 0, out
    code, out = book.sh("make --no-print-directory set-canary-weight PERCENT=5")
    assert code == 0 and '"canary_weight": 5' in out, out
    code, out = book.sh("make --no-print-directory promote-canary")
    assert code == 0 and '"stable": "lora-v1"' in out, out

    # gate (its loader stage here): one summary line, marks in the run-book's order
    code, out = book.sh("make --no-print-directory gate GATE_STAGES=loader", timeout=300)
    gate = next(line for line in out.splitlines() if line.startswith("GATE:"))
    assert code == 0 and re.match(r"GATE: pytest \S+\s+loader ✔\s+live-smoke \S+\s+titanic \S+\s+soak \S+\s+"
                                  r"alerts \S+\s+lora \S+", gate), out[-2000:]  # fmt: skip

    # exporter: starts per service, the cloud hit ratio
    exported = book.metrics(f"http://127.0.0.1:{book.exporter}/metrics")
    for service in ("web", "worker-gpu", "worker-cpu", "beat", "exporter"):
        assert (metric(exported, "service_startups_total", service=service) or 0) >= 1, service
    assert metric(exported, "swarm_cloud_hit_ratio") is not None

    # kick the tires
    code, out = book.sh(".venv/bin/python -m pytest tests/test_no_stub.py -q -p no:cacheprovider", timeout=300)
    assert code == 0 and "4 passed" in out, out[-2000:]

    # stack down
    book.passes("make --no-print-directory down", "down", timeout=120)
    code, out = book.sh("make --no-print-directory ps")
    assert not re.search(r"^\S+\s+running\b", out, flags=re.M), out
