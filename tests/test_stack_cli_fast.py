"""scripts/stack.py without a stack: docker-build-all's engine check, ps on the full profile, down's signals."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("swarm_stack_cli", ROOT / "scripts" / "stack.py")
stack = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(stack)

FULL = ["web", "worker-gpu", "worker-cpu", "worker-train", "beat", "flower", "exporter"]


@pytest.fixture
def var_dir(tmp_path, monkeypatch) -> Path:
    for name in ("SWARM_PORT", "FLOWER_PORT", "SWARM_EXPORTER_PORT", "SWARM_HOST", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWARM_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def table(out: str) -> dict[str, list[str]]:
    """ps's rows by service: [state, pid, port, log]."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("SERVICE"))
    return {cells[0]: cells[1:] for cells in (line.split() for line in lines[header + 1 :])}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_profiles_follow_the_procfile():
    assert list(stack.procfile()) == FULL
    assert stack.profile_services("full") == FULL
    assert stack.profile_services("ci") == ["web", "worker-gpu", "worker-cpu", "exporter"]


def test_ps_lists_every_service_of_the_full_profile_when_nothing_runs(var_dir, capsys):
    assert stack.main(["ps"]) == 0
    out = capsys.readouterr().out
    assert "stack: not started" in out
    rows = table(out)
    assert list(rows) == FULL
    assert all(row[0] == "stopped" and row[1] == "-" for row in rows.values())
    assert (rows["web"][2], rows["flower"][2], rows["exporter"][2], rows["beat"][2]) == ("8000", "5555", "9091", "-")
    assert rows["web"][3] == str(var_dir / "log" / "web.log")
    assert not var_dir.exists()  # ps creates nothing


def test_ps_tells_running_from_exited(var_dir, capsys):
    gone = subprocess.Popen(["true"])
    gone.wait()
    port = free_port()
    state = {
        "profile": "full",
        "ports": {"web": port, "flower": 5599, "exporter": 9199},
        "host": "127.0.0.1",
        "started_at": time.time(),
        "services": {
            "web": {"pid": os.getpid(), "started": stack.start_time(os.getpid())},
            "worker-gpu": {"pid": gone.pid, "started": 1},
            "redis": {"pid": os.getpid(), "started": stack.start_time(os.getpid()), "port": 6390},
        },
    }
    (var_dir / "run").mkdir(parents=True)
    (var_dir / "run" / "stack.json").write_text(json.dumps(state))
    assert stack.main(["ps"]) == 0
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port} (GET /health: no answer)" in out
    rows = table(out)
    assert list(rows) == [*FULL, "redis"]
    assert rows["web"][:3] == ["running", str(os.getpid()), str(port)]
    assert rows["worker-gpu"][:2] == ["exited", str(gone.pid)]
    assert rows["flower"][:3] == ["stopped", "-", "5599"]
    assert rows["redis"][:3] == ["running", str(os.getpid()), "6390"]


def test_a_reused_pid_is_not_the_service():
    assert stack.alive(os.getpid(), stack.start_time(os.getpid()))
    assert not stack.alive(os.getpid(), stack.start_time(os.getpid()) + 1)


def _record(var_dir: Path, **services: subprocess.Popen) -> None:
    records = {name: {"pid": p.pid, "started": stack.start_time(p.pid)} for name, p in services.items()}
    state = {"profile": "ci", "ports": {"web": 1, "flower": 2, "exporter": 3}, "host": "127.0.0.1", "services": records}
    (var_dir / "run").mkdir(parents=True, exist_ok=True)
    (var_dir / "run" / "stack.json").write_text(json.dumps(state))


def test_down_stops_whole_groups_and_kills_what_ignores_term(var_dir, capsys):
    # A service with a child in its group (like Celery's pool), and one that ignores SIGTERM.
    pooled = subprocess.Popen(["sh", "-c", "sleep 300 & exec sleep 301"], start_new_session=True)
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 302"], start_new_session=True)
    time.sleep(0.3)
    members = stack.service_processes(pooled.pid, stack.start_time(pooled.pid), stack.process_table())
    assert len(members) == 2, members
    _record(var_dir, web=pooled, exporter=stubborn)
    try:
        assert stack.main(["down", "--grace", "1"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1].startswith("PASS down: stopped web, exporter (2 services)")
        assert out[-1].endswith("; killed exporter")
        assert pooled.wait(5) == -signal.SIGTERM
        assert stubborn.wait(5) == -signal.SIGKILL
        assert not any(stack.alive(pid) for pid in members)
        assert not (var_dir / "run" / "stack.json").exists()
        assert stack.main(["down"]) == 0
        assert capsys.readouterr().out.strip() == "PASS down: nothing was running"
    finally:
        for proc in (pooled, stubborn):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def test_docker_build_all_without_an_engine_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither docker nor podman
    monkeypatch.delenv("CONTAINER_ENGINE", raising=False)
    assert stack.main(["docker-build-all"]) == 2
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == (
        "FAIL docker-build-all: no container engine reachable "
        "(docker: not installed (not on PATH); podman: not installed (not on PATH))"
    )


def _fake_engine(bin_dir: Path, name: str, *, info_rc: int, log: Path) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'if [ "$1" = info ]; then\n'
        f'  echo "Cannot connect to the Docker daemon at unix:///x.sock" >&2; exit {info_rc}\n'
        "fi\n"
        "exit 0\n"
    )
    script.chmod(0o755)


def test_docker_build_all_with_an_unreachable_daemon_says_why(tmp_path, monkeypatch, capsys):
    _fake_engine(tmp_path / "bin", "docker", info_rc=1, log=tmp_path / "calls")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("CONTAINER_ENGINE", raising=False)
    assert stack.main(["docker-build-all"]) == 2
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("FAIL docker-build-all: no container engine reachable (docker: Cannot connect to the")
    assert (tmp_path / "calls").read_text().split("\n")[0] == "info"


def test_docker_build_all_builds_every_dockerfile_of_docker_dir(tmp_path, monkeypatch, capsys):
    _fake_engine(tmp_path / "bin", "podman", info_rc=0, log=tmp_path / "calls")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("CONTAINER_ENGINE", "podman")
    assert stack.main(["docker-build-all"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    builds = [c for c in (tmp_path / "calls").read_text().splitlines() if c.startswith("build")]
    assert "build -f docker/Dockerfile --build-arg VARIANT=cpu -t swarm-app-cpu:latest ." in builds
    assert "build -f docker/Dockerfile --build-arg VARIANT=cuda -t swarm-app-cuda:latest ." in builds
    assert len(builds) == sum(len(stack.image_variants(f)) for f in stack.dockerfiles()) >= 2
    assert out[-1].startswith("PASS docker-build-all: built swarm-app-cpu:latest, swarm-app-cuda:latest")


def test_docker_build_all_builds_the_variants_asked_for(tmp_path, monkeypatch, capsys):
    _fake_engine(tmp_path / "bin", "podman", info_rc=0, log=tmp_path / "calls")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("CONTAINER_ENGINE", "podman")
    monkeypatch.setenv("SWARM_IMAGE_VARIANTS", "cpu")
    assert stack.main(["docker-build-all"]) == 0
    builds = [c for c in (tmp_path / "calls").read_text().splitlines() if c.startswith("build")]
    assert [b for b in builds if "docker/Dockerfile" in b] == [
        "build -f docker/Dockerfile --build-arg VARIANT=cpu -t swarm-app-cpu:latest ."
    ]


def test_the_app_image_leaves_models_and_local_state_out():
    # The Dockerfile itself (stages, variants, user) is checked in tests/swarm_site/test_deploy_files.py.
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "python:3.11-slim" in dockerfile
    assert "-r /src/requirements.txt" in dockerfile
    assert "prefetch_models" in dockerfile and "gunicorn" in dockerfile.split("\nCMD ")[1]
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", "reports", ".git", ".env", ".env.*"} <= ignored
