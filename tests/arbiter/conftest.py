"""Arbiter fixtures: DB 10 of the run's real Redis (flushed per test), the arbiter's routes and settings, an
in-process 'serving worker', eager Celery, and a loopback webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import yaml
from django.conf import settings as django_settings

from swarm_site.redis_client import get_redis
from tests.stack import run_redis_url

REDIS_URL = run_redis_url(10)
TOKEN = "arbiter-test-token-5b0f6c1e"
ROOT = Path(__file__).resolve().parents[2]


def model_file() -> Path:
    return Path(django_settings.SWARM_MODEL_DIR) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def redis10() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.ping()
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def arbiter_settings(settings, redis10):
    """Every arbiter test: Redis DB 10, a known token, no webhook."""
    settings.REDIS_URL = REDIS_URL
    settings.SWARM_ARBITER_TOKEN = TOKEN
    settings.SWARM_SWAP_WEBHOOK_URL = None
    settings.SWARM_SWAP_WEBHOOK_SECRET = None
    settings.SWARM_SWAP_DEADLINE_S = 120.0
    get_redis.cache_clear()
    yield settings
    get_redis.cache_clear()


@pytest.fixture
def registry_file(tmp_path, settings) -> Path:
    """The real default model, the same file under a second alias, and one whose hash is wrong."""
    gguf = str(model_file())
    real = yaml.safe_load((ROOT / "config" / "models.yaml").read_text())
    base = real["models"][0]
    alt = {**base, "alias": "smollm2-alt", "source": {"path": gguf}}
    broken = {**base, "alias": "smollm2-broken", "source": {"path": gguf}, "sha256": "0" * 64}
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"default": base["alias"], "models": [base, alt, broken]}))
    settings.SWARM_MODELS_FILE = path
    return path


@pytest.fixture
def worker_process(registry_file):
    """This test process plays the serving worker: inference.runtime's backend, restored after."""
    from inference import runtime

    saved = runtime._backend
    yield runtime
    current = runtime._backend
    if current is not None and current is not saved:
        current.unload()
    if saved is not None and not saved.loaded:
        saved.load()
    runtime._backend = saved


@pytest.fixture
def eager_celery():
    from swarm_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = before


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    observed: object = None

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A stdlib HTTP server on loopback that records every POST (and, via `observe`, what the
    world looked like at the moment it arrived)."""

    status: int = 200
    observe: Callable[[], object] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                observed = receiver.observe() if receiver.observe else None
                receiver.deliveries.append(Delivery(self.path, dict(self.headers.items()), body, observed))
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/swap"

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        import time

        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            self.arrived.wait(0.05)
        assert len(self.deliveries) >= count, f"expected {count} webhook deliveries, got {len(self.deliveries)}"
        return self.deliveries

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()
