"""Escape attempts against routing.sandbox, each through a real run: every one must be contained.

Each case runs hostile code in the sandbox, then checks on the host side that nothing leaked: the secret is
in neither stdout nor stderr, the host file was not created, the listener got no connection, the signal
did not arrive, the run ended in bounded time, no process of the run is left.  Planted secrets are world
readable (and planted directories world writable) so that only the sandbox, not file permissions, keeps
them in.
"""

from __future__ import annotations

import ast
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from arbiter.auth import arbiter_token, token_file
from routing import sandbox

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0


def _leftovers() -> list[int]:
    """Processes (zombies included) still running under a throw-away sandbox uid (root parent only)."""
    lo, hi = sandbox.SANDBOX_UID_RANGE
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as fh:
                uid = next(int(line.split()[1]) for line in fh if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if lo <= uid < hi:
            found.append(int(pid))
    return found


def assert_no_leftovers() -> None:
    if not IS_ROOT:
        return  # the run's processes share the parent's uid: only the root case can be scanned
    deadline = time.monotonic() + 2.0
    while _leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _leftovers() == []


def run(code: str, **limits: float) -> sandbox.SandboxResult:
    result = sandbox.run_python(code=textwrap.dedent(code), **limits)
    assert_no_leftovers()
    return result


def output(result: sandbox.SandboxResult) -> str:
    return result.stdout + result.stderr


# --------------------------------------------------------------------------- reading host files
READ = """
import os, sys
for i, path in enumerate({paths!r}):
    try:
        if os.path.isdir(path):
            found = sorted(os.listdir(path))
        else:
            with open(path, "rb") as fh:
                found = (os.path.getsize(path), fh.read(4096))
        print("LEAK", i, found)
        sys.stderr.write("LEAK %d %r\\n" % (i, found))
    except OSError as exc:
        print("denied", i, type(exc).__name__)
"""


@dataclass
class Target:
    paths: list[str]  # what the code tries to read (a directory is listed)
    secrets: list[str]  # none of these may come back


@pytest.fixture
def planted() -> Iterator[Path]:
    """A world-readable directory inside the configured var/ dir, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-escape-", dir=settings.VAR_DIR))
    path.chmod(0o755)  # only the sandbox may stand between the code and these files
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def etc_passwd(_: Path) -> Target:
    first = Path("/etc/passwd").read_text().splitlines()[0]
    return Target(["/etc/passwd", "/etc"], [first, "passwd"])


def project_tree(_: Path) -> Target:
    manage = (REPO / "manage.py").read_text()
    return Target([str(REPO / "manage.py"), str(REPO), str(REPO / "swarm_site")], [manage[:120], "settings.py"])


def var_dir(directory: Path) -> Target:
    marker = f"planted-{secrets.token_hex(8)}"
    (directory / marker).write_text("x")
    (directory / marker).chmod(0o644)
    return Target([str(settings.VAR_DIR), str(directory)], [marker])


def sqlite_database(directory: Path) -> Target:
    secret = f"password-hash-{secrets.token_hex(8)}"
    db = directory / "swarm.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE auth_user (password TEXT)")
        conn.execute("INSERT INTO auth_user VALUES (?)", (secret,))
    db.chmod(0o644)
    paths = [str(db)]
    configured = settings.DATABASES["default"].get("NAME")
    if configured and Path(str(configured)).is_file():
        paths.append(str(configured))
    return Target(paths, [secret, "SQLite format 3"])


def arbiter_token_file(_: Path) -> Target:
    token = arbiter_token()
    assert token and token_file().is_file()
    return Target([str(token_file())], [token])


def _initial_environment(pid: int | str) -> list[str]:
    """The distinctive KEY=VALUE entries a process started with (what /proc/<pid>/environ shows)."""
    try:
        entries = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    except PermissionError:  # not even the host's root may read it (some containers): nothing to leak then
        return []
    return [e for e in entries if len(e) > 16 and not e.startswith(("PATH=", "LANG=", "HOME=", "TMPDIR=", "PWD="))]


def process_environments(_: Path) -> Target:
    """The host's PID 1, this test process (the sandbox's parent) and a process holding a canary."""
    canary = f"SWARM_ESCAPE_CANARY=canary-{secrets.token_hex(8)}"
    key, value = canary.split("=")
    holder = subprocess.Popen(["sleep", "30"], env={key: value})
    try:
        pids = [1, os.getpid(), holder.pid]
        leaks = [canary, *_initial_environment(1), *_initial_environment("self")]
        return Target([f"/proc/{pid}/environ" for pid in pids], leaks)
    finally:
        _HOLDERS.append(holder)


_HOLDERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_holders() -> Iterator[None]:
    yield
    while _HOLDERS:
        holder = _HOLDERS.pop()
        holder.kill()
        holder.wait(10)


@pytest.mark.parametrize(
    "target",
    [etc_passwd, project_tree, var_dir, sqlite_database, arbiter_token_file, process_environments],
    ids=lambda f: f.__name__,
)
def test_host_files_cannot_be_read(target: Callable[[Path], Target], planted: Path) -> None:
    case = target(planted)
    result = run(READ.format(paths=case.paths))
    for secret in case.secrets:
        assert secret not in output(result)
    if target is not process_environments:  # there /proc/1 is the sandboxed code itself: its own, minimal env
        assert "LEAK" not in output(result)
        assert result.stdout.count("denied") == len(case.paths), result.stderr  # every attempt ran, and failed


def test_assert_messages_cannot_carry_file_contents() -> None:
    """The finding as reported: a prompt's assert that reads a file into its message."""
    first = Path("/etc/passwd").read_text().splitlines()[0]
    result = run('assert False, open("/etc/passwd").read()[:160]')
    assert not result.ok and first not in output(result)
    assert "FileNotFoundError" in result.stderr


def test_the_environment_is_minimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_ESCAPE_CANARY", "canary-in-the-worker-environment")
    result = run("import os\nprint(sorted(os.environ))")
    assert result.ok and "canary" not in output(result)
    assert set(ast.literal_eval(result.stdout)) <= {"PATH", "LANG", "HOME", "TMPDIR", "PWD"}


# --------------------------------------------------------------------------- writing outside
WRITE = """
for i, path in enumerate({paths!r}):
    try:
        with open(path, "w") as fh:
            fh.write("escaped")
        print("WROTE", i)
    except OSError as exc:
        print("denied", i, type(exc).__name__)
"""


@pytest.mark.parametrize("where", ["host-tmp", "project-dir", "var-dir"])
def test_host_files_cannot_be_written(where: str, planted: Path) -> None:
    name = f"sandbox-escape-{secrets.token_hex(8)}"
    if where == "host-tmp":
        directory = Path(tempfile.gettempdir())
    elif where == "project-dir":
        directory = REPO
    else:
        directory = planted
        directory.chmod(0o777)  # world writable: only the sandbox may stop the write
    target = directory / name
    try:
        result = run(WRITE.format(paths=[str(target)]))
        assert not target.exists()
        if where != "host-tmp":  # the sandbox's /tmp is its own tmpfs: writing there works, and stays there
            assert "WROTE" not in result.stdout and result.stdout.startswith("denied"), result.stderr
    finally:
        target.unlink(missing_ok=True)


def test_tmp_is_private_and_empty() -> None:
    result = run("import os\nprint(os.getcwd(), os.listdir('/tmp'))\nopen('scratch', 'w').write('ok')\n")
    assert result.ok and result.stdout == "/tmp []\n"


# --------------------------------------------------------------------------- reaching other processes
CONNECT = """
import socket
try:
    s = socket.socket({family})
    s.settimeout(2)
    s.connect({address!r})
    s.sendall(b"PING\\r\\n")
    print("CONNECTED", s.recv(100))
except OSError as exc:
    print("denied", type(exc).__name__)
"""


def test_loopback_tcp_is_unreachable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        address = listener.getsockname()
        socket.create_connection(address, timeout=2).close()  # reachable from the host ...
        listener.accept()[0].close()
        result = run(CONNECT.format(family="socket.AF_INET", address=address))
        assert "CONNECTED" not in result.stdout and result.stdout.startswith("denied")
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):  # ... and nothing came from the sandbox
            listener.accept()


@pytest.fixture
def unix_redis() -> Iterator[str]:
    """A redis-server listening on a world-accessible Unix socket only."""
    server = shutil.which("redis-server")
    assert server, "redis-server is needed for this test"
    directory = tempfile.mkdtemp(prefix="sandbox-escape-redis-")
    os.chmod(directory, 0o755)  # only the sandbox may stand between the code and the socket
    path = os.path.join(directory, "redis.sock")
    proc = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", path, "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
         "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)
        yield path
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def test_unix_socket_is_unreachable(unix_redis: str) -> None:
    client = redis.Redis(unix_socket_path=unix_redis)
    assert client.ping()  # reachable from the host
    before = client.info("stats")["total_connections_received"]
    result = run(CONNECT.format(family="socket.AF_UNIX", address=unix_redis))
    assert "CONNECTED" not in result.stdout and "PONG" not in output(result)
    assert result.stdout.startswith("denied"), result.stderr
    assert client.info("stats")["total_connections_received"] == before


@pytest.fixture
def usr1_received() -> Iterator[list[int]]:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("victim", ["own-parent", "test-process", "every-process"])
def test_signals_do_not_leave_the_sandbox(victim: str, usr1_received: list[int]) -> None:
    pid = {"own-parent": "os.getppid()", "test-process": str(os.getpid()), "every-process": "-1"}[victim]
    code = f"""
    import os, signal
    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill({pid}, sig)
            print("sent", sig)
        except OSError as exc:
            print("denied", type(exc).__name__)
    """
    run(code)
    time.sleep(0.2)
    assert usr1_received == []
    assert run("print('still here')").stdout == "still here\n"  # the sandbox machinery is alive too


# --------------------------------------------------------------------------- exhausting resources
def test_fork_bomb_is_contained() -> None:
    started = time.monotonic()
    result = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", wall_s=3)
    assert time.monotonic() - started < 6
    assert not result.ok and result.killed_reason == "wall"
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork


def test_four_gigabytes_are_refused() -> None:
    result = run("x = bytearray(4 * 1024 ** 3)\nprint('ALLOCATED')", wall_s=10)
    assert not result.ok and "ALLOCATED" not in result.stdout
    assert result.killed_reason == "memory" and result.duration_s < 5


@pytest.mark.parametrize(
    ("limits", "reason"), [({"wall_s": 2, "cpu_s": 30}, "wall"), ({"wall_s": 30, "cpu_s": 1}, "cpu")]
)
def test_infinite_loop_is_stopped(limits: dict[str, float], reason: str) -> None:
    started = time.monotonic()
    result = run("while True:\n    pass\n", **limits)
    assert not result.ok and result.killed_reason == reason
    assert time.monotonic() - started < 5


def test_100_megabytes_to_stdout_stay_bounded() -> None:
    tracemalloc.start()
    try:
        started = time.monotonic()
        result = run("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1024 * 1024)\n", wall_s=20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.stdout) <= 64_000 and result.truncated
    assert not result.ok and result.killed_reason == "output"
    assert time.monotonic() - started < 5
    assert peak < 8 * 1024 * 1024, peak  # read with a cap, never buffered whole
