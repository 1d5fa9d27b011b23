"""`scripts/stack.py` (make ci-up / ps / down) on a real stack: own ports, var dir and Redis DB.

One cycle, on the quick-test profile (web, worker-gpu, worker-cpu, exporter): up, ps, up again (nothing
to do), down (every process of every group gone, ports free). tests/test_stack_cli_fast.py covers the
full profile's listing, down's TERM-then-KILL and docker-build-all without a stack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack import ROOT, Stack, children, free_port

pytestmark = pytest.mark.integration

CLI = [sys.executable, str(ROOT / "scripts" / "stack.py")]
CI = ["web", "worker-gpu", "worker-cpu", "exporter"]
OTHERS = ["worker-train", "beat", "flower"]


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def last_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def table(out: str) -> dict[str, list[str]]:
    """ps's rows by service: [state, pid, port, log]."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("SERVICE"))
    return {cells[0]: cells[1:] for cells in (line.split() for line in lines[header + 1 :])}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def stack_env(shared_redis_url):
    """The environment of a test stack (tests/stack.py: own var dir, SQLite, metrics dir) on free ports."""
    env = Stack.build(redis_url=shared_redis_url).env
    ports = {name: str(free_port()) for name in ("SWARM_PORT", "FLOWER_PORT", "SWARM_EXPORTER_PORT")}
    env.update(ports, WEB_CONCURRENCY="1", SWARM_WEB_THREADS="4")
    yield env
    cli(env, "down", "--grace", "5", timeout=60)  # whatever the test left


def test_ci_up_ps_up_again_down(stack_env):
    env, port, exporter = stack_env, int(stack_env["SWARM_PORT"]), int(stack_env["SWARM_EXPORTER_PORT"])
    var = Path(env["SWARM_VAR_DIR"])

    up = cli(env, "ci-up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert last_line(up).startswith(f"PASS ci-up: stack healthy on http://127.0.0.1:{port} in "), up.stdout

    ps = cli(env, "ps")
    assert ps.returncode == 0, ps.stderr
    assert "stack: profile ci, up since " in ps.stdout and "(GET /health: 200)" in ps.stdout, ps.stdout
    rows = table(ps.stdout)
    assert list(rows) == ["web", "worker-gpu", "worker-cpu", "worker-train", "beat", "flower", "exporter"]
    for name in CI:
        state, pid, _port, log = rows[name]
        assert state == "running", ps.stdout
        assert alive(int(pid)) and (var / "run" / f"{name}.pid").read_text().strip() == pid
        assert log == str(var / "log" / f"{name}.log") and Path(log).stat().st_size > 0
    assert (rows["web"][2], rows["exporter"][2], rows["worker-gpu"][2]) == (str(port), str(exporter), "-")
    assert all(rows[name][:2] == ["stopped", "-"] for name in OTHERS), ps.stdout
    assert listening(port) and listening(exporter)

    again = cli(env, "ci-up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert last_line(again).startswith(f"PASS ci-up: stack already running on http://127.0.0.1:{port}")
    assert {n: r[1] for n, r in table(cli(env, "ps").stdout).items()} == {n: r[1] for n, r in rows.items()}

    # Every process of the stack: the services and their children (gunicorn's and Celery's pool workers).
    pids = [int(rows[name][1]) for name in CI]
    pids += [child for pid in pids for child in children(pid)]
    assert len(pids) > len(CI)

    down = cli(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert last_line(down).startswith("PASS down: stopped web, worker-gpu, worker-cpu, exporter (4 services)")
    assert not [pid for pid in pids if alive(pid)]
    assert not listening(port) and not listening(exporter)
    assert all(row[:2] == ["stopped", "-"] for row in table(cli(env, "ps").stdout).values())
    assert not list((var / "run").glob("*.pid"))

    assert last_line(cli(env, "down")) == "PASS down: nothing was running"
