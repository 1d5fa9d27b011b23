"""The design's three-host stack in network namespaces: host A (Redis, PostgreSQL, the API, beat,
the exporter) and hosts B and C (a serving worker and a CPU worker each), with no shared directory.

    net = Network(); cluster = Cluster(net).start()   # A at <prefix>.1, B .2, C .3; the test at .254
    cluster.post("/orchestrate", {...})               # over the bridge, with an API key
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
import requests

from tests.cluster.netns import Host, Network
from tests.stack import PY, ROOT, wait_for

PG_BIN = Path("/usr/lib/postgresql")
WEB_PORT = 8000


def postgres_bin(name: str) -> str:
    found = sorted(PG_BIN.glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not under {PG_BIN}")
    return str(found[-1])


def model_file() -> Path:
    """The file of the model the tests serve (SWARM_MODEL, else the registry's default), as prefetched."""
    from inference.registry import load_registry

    spec = load_registry(ROOT / "config" / "models.yaml").get(os.environ.get("SWARM_MODEL") or None)
    return ROOT / "var" / "models" / spec.filename


class Cluster:
    def __init__(self, net: Network, **extra_env: str) -> None:
        self.net = net
        self.a = net.add_host("node-a")
        self.b = net.add_host("node-b")
        self.c = net.add_host("node-c")
        self.workers = (self.b, self.c)
        self.extra_env = extra_env
        self.key = ""
        os.chmod(net.root, 0o755)  # the postgres user reads its data directory under it

    # -- environment ----------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        return f"redis://{self.a.ip}:6379/0"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.a.ip}:5432/swarm"

    @property
    def url(self) -> str:
        return f"http://{self.a.ip}:{WEB_PORT}"

    def env(self, host: Host) -> dict[str, str]:
        """Each host's own directories; only the network is shared."""
        var = host.dir / "var"
        for sub in ("metrics", "adapters", "models"):
            (var / sub).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_", "DJANGO_", "CELERY_"))}
        env.update(
            SWARM_ENV="test",
            SWARM_NODE=host.name,
            REDIS_URL=self.redis_url,
            DATABASE_URL=self.database_url,
            SWARM_VAR_DIR=str(var),
            SWARM_MODEL_DIR=str(var / "models"),
            SWARM_ADAPTER_DIR=str(var / "adapters"),
            PROMETHEUS_MULTIPROC_DIR=str(var / "metrics"),
            SWARM_WORKER_HEARTBEAT_S="1",
            PYTHONUNBUFFERED="1",
            SWARM_ANON_RATE_PER_MINUTE="0",
            SWARM_ANON_CONCURRENCY="0",
            ALLOWED_HOSTS=f"localhost,127.0.0.1,{self.a.ip}",
        )
        if os.environ.get("SWARM_MODEL"):
            env["SWARM_MODEL"] = os.environ["SWARM_MODEL"]
        env.update(self.extra_env)
        return env

    def manage(self, *args: str) -> str:
        """A management command run from the test's side of the bridge, against host A's stores."""
        return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env(self.a), check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    # -- host A -----------------------------------------------------------------------------------
    def start_redis(self) -> None:
        rdir = self.a.dir / "redis"
        rdir.mkdir(exist_ok=True)
        self.a.run("redis", [shutil.which("redis-server") or "redis-server", "--port", "6379", "--bind",
                             f"{self.a.ip} 127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode",
                             "no", "--dir", str(rdir)], env=dict(os.environ), cwd=rdir)  # fmt: skip
        wait_for(lambda: redis.Redis(host=self.a.ip, socket_timeout=1).ping(), timeout=15, what="host A's redis")

    def start_postgres(self) -> None:
        data = self.a.dir / "pg"
        if not data.exists():
            data.mkdir()
            shutil.chown(data, "postgres", "postgres")
            subprocess.run(["runuser", "-u", "postgres", "--", postgres_bin("initdb"), "-D", str(data), "-A",
                            "trust", "-U", "postgres", "--no-sync"], check=True, capture_output=True)  # fmt: skip
            with open(data / "pg_hba.conf", "a") as hba:  # the other hosts, over the bridge
                hba.write(f"host all all {self.net.prefix}.0/24 trust\n")
        self.a.run("postgres", ["runuser", "-u", "postgres", "--", postgres_bin("postgres"), "-D", str(data), "-k",
                                str(data), "-c", f"listen_addresses={self.a.ip}", "-c", "fsync=off", "-p", "5432"],
                   env=dict(os.environ), cwd=data)  # fmt: skip

        def ready() -> bool:
            probe = [postgres_bin("pg_isready"), "-h", self.a.ip, "-p", "5432", "-t", "1"]
            return subprocess.run(probe, capture_output=True).returncode == 0

        wait_for(ready, timeout=30, what="host A's postgres")

    def stop_postgres(self) -> None:
        """A fast shutdown (SIGINT to the postmaster), as a restart would do."""
        self.a.kill("postgres", signal.SIGINT)

    def create_database(self) -> None:
        subprocess.run([postgres_bin("createdb"), "-h", self.a.ip, "-U", "postgres", "swarm"], check=True,
                       capture_output=True)  # fmt: skip

    def start_web(self) -> None:
        env = {**self.env(self.a), "SWARM_HOST": "0.0.0.0", "SWARM_PORT": str(WEB_PORT),
               "WEB_CONCURRENCY": "1", "SWARM_WEB_THREADS": "16"}  # fmt: skip
        self.a.run("web", [PY, "-m", "gunicorn", "swarm_site.wsgi:application", "--config",
                           "swarm_site/gunicorn.conf.py"], env=env, cwd=ROOT)  # fmt: skip

    def start_beat(self) -> None:
        self.a.run("beat", [PY, "-m", "celery", "-A", "swarm_site", "beat", "--loglevel", "INFO", "--pidfile", "",
                            "-s", str(self.a.dir / "beat-schedule")], env=self.env(self.a), cwd=ROOT)  # fmt: skip

    def start_exporter(self) -> None:
        env = {**self.env(self.a), "SWARM_EXPORTER_HOST": self.a.ip, "SWARM_EXPORTER_PORT": "9091"}
        self.a.run("exporter", [PY, "-m", "observability.exporter"], env=env, cwd=ROOT)

    # -- hosts B and C ----------------------------------------------------------------------------
    def install_models(self, host: Host) -> None:
        """The host's own copy of the model file (verified against the registry's SHA-256 when it loads)
        and of the prompt embeddings (the API's small-talk classifier and pattern heads use them)."""
        self.env(host)  # makes the directories
        models = host.dir / "var" / "models"
        source = model_file()
        if not (models / source.name).exists():
            shutil.copyfile(source, models / source.name)
        embeddings = source.parent / "embeddings"
        if embeddings.is_dir() and not (models / "embeddings").exists():
            shutil.copytree(embeddings, models / "embeddings")

    def start_workers(self, host: Host) -> None:
        env = self.env(host)
        host.run("worker-gpu", [PY, "manage.py", "gpu_worker", "--gpu", "0", "--loglevel", "INFO"], env=env, cwd=ROOT)
        host.run("worker-cpu", [PY, "-m", "celery", "-A", "swarm_site", "worker", "-Q", "default,cpu", "-n",
                                "cpu@%h", "--pool", "threads", "-c", "8", "--loglevel", "INFO"],
                 env=env, cwd=ROOT)  # fmt: skip

    # -- the whole stack --------------------------------------------------------------------------
    def start(self) -> Cluster:
        self.start_redis()
        self.start_postgres()
        self.create_database()
        self.manage("migrate", "--noinput", "-v0")
        self.key = self.manage("create_api_key", "cluster", "--rate", "0", "--concurrency", "0").split()[-1]
        self.install_models(self.a)
        self.start_web()
        self.start_beat()
        self.start_exporter()
        for host in self.workers:
            self.install_models(host)
            self.start_workers(host)
        self.wait_serving({f"gpu0@{h.name}" for h in self.workers})
        return self

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/health", timeout=3).json()

    def serving(self) -> set[str]:
        """Names of the serving workers /health reports with a model loaded."""
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            return {w["worker"] for w in self.health()["checks"]["workers"].get("workers", [])}
        return set()

    def wait_serving(self, names: set[str], timeout: float = 180) -> None:
        try:
            wait_for(lambda: names <= self.serving(), timeout=timeout, interval=0.5, what=f"{sorted(names)} serving")
        except TimeoutError:
            raise TimeoutError(f"not serving: {sorted(names - self.serving())}\n{self.logs()}") from None

    def post(self, path: str, body: dict[str, Any], *, timeout: float = 120) -> requests.Response:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        return requests.post(f"{self.url}{path}", data=json.dumps(body), timeout=timeout, headers=headers)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=5)

    def interaction_ids(self) -> list[str]:
        """Every request id in the interaction table (duplicates kept, to be counted)."""
        import psycopg

        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://")) as conn:
            return [row[0] for row in conn.execute("SELECT request_id FROM routing_interaction")]

    def wait_log_drained(self, timeout: float = 60) -> None:
        """The interaction stream has no entry left to write (nothing new, nothing pending)."""
        from routing.interaction_log import GROUP, STREAM_KEY

        client = self.redis()

        def drained() -> bool:
            groups = {g["name"]: g for g in client.xinfo_groups(STREAM_KEY)}
            group = groups.get(GROUP)
            return bool(group) and group["pending"] == 0 and (group.get("lag") or 0) == 0

        wait_for(drained, timeout=timeout, interval=0.5, what="the interaction log drained")

    def tasks_done_on(self, host: Host) -> int:
        """Model tasks the host's serving worker finished (its log's `succeeded` lines)."""
        return host.log("worker-gpu", tail=10_000_000).count("succeeded in")

    def logs(self) -> str:
        parts = []
        for host in self.net.hosts.values():
            for path in sorted(host.dir.glob("*.log")):
                parts.append(f"--- {host.name}/{path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        self.net.close()


def until(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Whether `predicate()` became true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
