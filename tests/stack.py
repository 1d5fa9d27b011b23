"""Start the real stack for integration tests: redis (shared or private), workers, web, over real HTTP."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def run_redis_url(db: int) -> str:
    """Database `db` on this test run's Redis (the server of SWARM_TEST_REDIS_URL: tests/conftest.py)."""
    base = os.environ.get("SWARM_TEST_REDIS_URL", "redis://127.0.0.1:6379/13").rsplit("/", 1)[0]
    return f"{base}/{db}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, requests.RequestException, redis.RedisError) as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, so it can be stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="swarm-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is needed for the fault tests"
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: redis.Redis(port=self.port).ping(), timeout=10, what="private redis")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@dataclass
class Stack:
    """Web (gunicorn) + serving worker + bookkeeping worker, all real processes sharing one env."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    key: str | None = None  # an API key without limits, made at start; `post` sends it
    logdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swarm-stack-")))

    @classmethod
    def build(cls, *, redis_url: str, database_url: str | None = None, **extra: str) -> Stack:
        tmp = Path(tempfile.mkdtemp(prefix="swarm-db-"))
        (tmp / "metrics").mkdir()
        if not os.environ.get("SWARM_KEEP_STACK_DIRS"):
            # The stack's database, adapters and metrics go when the run ends (a spiral's are 400 MB);
            # SWARM_KEEP_STACK_DIRS=1 keeps them to look into. Its logs (`logdir`) are kept.
            atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "CELERY_"))}
        env.update(
            SWARM_ENV="test",
            REDIS_URL=redis_url,
            DATABASE_URL=database_url or f"sqlite:///{tmp / 'swarm.sqlite3'}",
            SWARM_VAR_DIR=str(tmp),
            SWARM_MODEL_DIR=str(ROOT / "var" / "models"),
            SWARM_WORKER_HEARTBEAT_S="1",
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
            PYTHONUNBUFFERED="1",
            # Keyless loopback callers are unlimited here; tests of the limits set them.
            SWARM_ANON_RATE_PER_MINUTE="0",
            SWARM_ANON_CONCURRENCY="0",
        )
        # the caller's (`make test`: the tiny profile, 1 thread; a benchmark's choice of heads)
        for name in ("SWARM_MODEL", "SWARM_MODEL_THREADS", "SWARM_REASONING_HEAD"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        env.update(extra)
        return cls(env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `argv` with the stack's env, `env` overriding it for this process alone."""
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs[name] = proc
        return proc

    def manage(self, *args: str) -> str:
        """Run a management command with the stack's environment; its output."""
        return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True,
                              text=True).stdout  # fmt: skip

    def migrate(self) -> None:
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)

    def start_gpu_worker(self, name: str = "worker-gpu", env: dict[str, str] | None = None) -> subprocess.Popen:
        """A serving worker; `env` overrides the stack's env for it alone (another host's SWARM_ADAPTER_DIR)."""
        return self._spawn(name, [PY, "manage.py", "gpu_worker", "--gpu", "0", "--loglevel", "INFO"], env)

    def start_cpu_worker(self) -> subprocess.Popen:
        return self._spawn("worker-cpu", [PY, "-m", "celery", "-A", "swarm_site", "worker", "-Q", "default,cpu",
                                          "-n", f"cpu-{self.port}@%h", "--pool", "threads", "-c", "8",
                                          "--loglevel", "INFO"])  # fmt: skip

    def start_train_worker(self) -> subprocess.Popen:
        self.env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch and llama.cpp in one process (training/hf.py)
        return self._spawn("worker-train", [PY, "-m", "celery", "-A", "swarm_site", "worker", "-Q", "train",
                                            "-n", f"train-{self.port}@%h", "-c", "1", "--max-tasks-per-child", "1",
                                            "--loglevel", "INFO"])  # fmt: skip

    def start_beat(self) -> subprocess.Popen:
        schedule = str(Path(self.env["SWARM_VAR_DIR"]) / "beat-schedule")
        return self._spawn("beat", [PY, "-m", "celery", "-A", "swarm_site", "beat", "--loglevel", "INFO",
                                    "--pidfile", "", "-s", schedule])  # fmt: skip

    def start_exporter(self) -> int:
        port = free_port()
        self.env["SWARM_EXPORTER_PORT"] = str(port)
        self._spawn("exporter", [PY, "-m", "observability.exporter"])
        return port

    def start_web(self) -> subprocess.Popen:
        self.env["SWARM_PORT"] = str(self.port)
        self.env.setdefault("SWARM_WEB_THREADS", "8")  # a test stack's; a benchmark may ask for the shipped 32
        self.env.setdefault("WEB_CONCURRENCY", "1")
        return self._spawn("web", [PY, "-m", "gunicorn", "swarm_site.wsgi:application",
                                   "--config", "swarm_site/gunicorn.conf.py"])  # fmt: skip

    def create_key(self, name: str = "tests", *args: str) -> str:
        """A new API key on this stack; with no options it has no rate or concurrency limit."""
        return self.manage("create_api_key", name, *(args or ("--rate", "0", "--concurrency", "0"))).split()[-1]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def start(self) -> Stack:
        self.migrate()
        self.key = self.create_key()
        self.start_gpu_worker()
        self.start_cpu_worker()
        self.start_web()
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 90) -> dict:
        def healthy():
            response = requests.get(f"{self.url}/health", timeout=2)
            return response.json() if response.status_code == 200 else None

        try:
            return wait_for(healthy, timeout=timeout, interval=0.3, what="GET /health == 200")
        except TimeoutError:
            raise TimeoutError(f"stack not healthy; logs:\n{self.logs()}") from None

    def logs(self, tail: int | None = 3000) -> str:
        """Every process's log (the last `tail` characters of each; None for all of it)."""
        files = sorted(self.logdir.glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text()[-tail if tail else 0 :]}" for p in files)

    def post(
        self, path: str, body, *, timeout: float = 120, raw: bool = False, anonymous: bool = False
    ) -> requests.Response:
        """POST JSON with the stack's key (`anonymous`: without it, as a keyless loopback caller)."""
        data = body if raw else json.dumps(body)
        auth = {} if anonymous else self.auth
        return requests.post(f"{self.url}{path}", data=data, headers={"Content-Type": "application/json", **auth},
                             timeout=timeout)  # fmt: skip

    def worker_pids(self, name: str = "worker-gpu") -> tuple[int, list[int]]:
        """(main worker pid, its pool children). The gpu_worker command execs celery in place."""
        main = self.procs[name].pid
        return main, children(main)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            proc.wait(20)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM if name == "web" else signal.SIGKILL)
