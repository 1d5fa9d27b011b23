"""Shared fixtures. Integration stacks talk to the run's Redis (DB 13) or a private redis-server."""

from __future__ import annotations

import os
import shutil

import pytest
import redis

from tests.stack import PrivateRedis, Stack, run_redis_url

TEST_REDIS_URL = run_redis_url(13)
_RUN_REDIS: PrivateRedis | None = None


def pytest_configure(config: pytest.Config) -> None:
    """A run that may use Redis gets a redis-server of its own (DB 13 for the stacks, other numbers for
    some suites: tests.stack.run_redis_url), stopped when it ends, so two runs on one machine never
    share a database. SWARM_TEST_REDIS_URL names one instead; without redis-server, the local Redis."""
    global TEST_REDIS_URL, _RUN_REDIS
    if os.environ.get("SWARM_TEST_REDIS_URL") or _whole_default_run(config) or not shutil.which("redis-server"):
        return
    _RUN_REDIS = PrivateRedis()
    _RUN_REDIS.start()
    # Read by the suites' modules (tests.stack.run_redis_url), imported after this.
    os.environ["SWARM_TEST_REDIS_URL"] = f"redis://127.0.0.1:{_RUN_REDIS.port}/13"
    TEST_REDIS_URL = run_redis_url(13)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _RUN_REDIS is not None:
        _RUN_REDIS.stop()
        shutil.rmtree(_RUN_REDIS.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_redis_url() -> str:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.ping()
    client.flushdb()
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def stack(shared_redis_url):
    """The main stack: gunicorn + serving worker (real model) + bookkeeping worker."""
    s = Stack.build(redis_url=shared_redis_url, SWARM_ALLOW_ANONYMOUS_LOOPBACK="false")
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.fixture(scope="session")
def api_key(stack) -> str:
    """A key on the main stack (which, unlike the local default, refuses anonymous calls); no limits."""
    return stack.key


@pytest.fixture(scope="module")
def module_redis():
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_redis(shared_redis_url, settings):
    """The API's own Redis client (rate counters, slots, serving state) on the tests' database, emptied."""
    from access.key_cache import key_cache
    from routing.admission import forget_capacity
    from swarm_site.redis_client import get_redis

    settings.REDIS_URL = shared_redis_url
    get_redis.cache_clear()
    key_cache.reset()  # its listener follows REDIS_URL
    forget_capacity()  # the serving places this process read last came from another Redis
    client = get_redis()
    client.flushdb()
    yield client
    client.flushdb()  # what the test published (a serving adapter, say) must not reach the session's stack
    get_redis.cache_clear()
    key_cache.reset()
    forget_capacity()


# --- tiers -------------------------------------------------------------------------------------
# `pytest -q` with no paths and no -m runs the fast tier alone: no servers (Redis, workers, stacks)
# and no model (llama.cpp, torch, ONNX). `make test` runs every tier (`-m "not slow"`), and a run
# that names files, node ids or a marker expression runs what it names.
SERVER_FIXTURES = {
    "stack", "api_redis", "shared_redis_url", "module_redis", "private_redis", "redis10", "unix_redis",
    "training_redis", "mining_redis", "metrics_stack", "lora_stack", "stall_stack", "stack_without_bwrap",
    "postgres_url", "worker_process", "live_server",
}  # fmt: skip
MODEL_FIXTURES = {
    "backend", "base_spec", "hf_base", "q4_backend", "probe_ids", "hf_base_outputs", "q4_base_outputs", "lora_cases",
    "small_lora", "tiny_llama", "reference", "torch_backend", "onnx_backend", "default_export", "paraphrase_groups",
}  # fmt: skip
HEAVY_MARKERS = ("integration", "slow", "concurrency", "heavy")
# Left out of the fast tier whole (not even imported): suites that need servers or the model, and
# unit suites that spawn processes (the bubblewrap sandbox, manage.py checks, HTTP servers) or wait
# out deadlines and back-offs by design. Each of them runs in `make test`.
HEAVY_PATHS = (
    "integration/", "training/test_lora_equivalence.py", "training/test_hf.py", "training/test_gguf_lora.py",
    "training/test_llama_adapters.py", "training/test_distillation.py", "training/test_pipeline.py",
    "mining/test_embeddings.py", "mining/test_hot_reload.py", "inference/test_context_window.py",
    "inference/test_special_tokens.py", "inference/test_constraints.py", "inference/test_integrity.py",
    "routing/test_sandbox.py", "routing/test_sandbox_escape.py", "routing/test_reply_stream.py",
    "routing/test_cascade.py", "routing/test_heads_math.py", "routing/test_openai_completions.py",
    "budget/test_budget.py", "budget/test_concurrency.py", "swarm_site/test_deploy_check.py",
    "swarm_site/test_settings.py", "swarm_site/test_schema.py", "observability/test_metrics.py", "bench/test_data.py",
    "bench/test_gate.py", "bench/test_replay_provider.py", "bench/test_scorers.py", "budget/test_admin.py",
    "observability/test_alert_drill.py", "observability/test_rules_and_dashboard.py", "test_stack_cli_fast.py",
    "arbiter/", "routing/test_code_differential.py", "routing/test_code_measure.py", "training/test_worker_preload.py",
    "inference/test_fetch_parts.py", "bench/test_titanic_report.py", "bench/test_humaneval_sandbox.py",
    "routing/test_api_stage.py", "routing/test_agent0_calibrated.py", "routing/test_agent0_distilled.py",
    "routing/test_chat.py", "swarm_site/test_deploy_files.py",
)  # fmt: skip
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def is_fast(item: pytest.Item) -> bool:
    """Whether `item` belongs to the fast tier (see above)."""
    if any(item.get_closest_marker(name) for name in HEAVY_MARKERS):
        return False
    return not set(item.fixturenames) & (SERVER_FIXTURES | MODEL_FIXTURES)


def _whole_default_run(config: pytest.Config) -> bool:
    """No paths or node ids given (pytest fell back on `testpaths`), no -m, no -k."""
    named = config.args_source != pytest.Config.ArgsSource.TESTPATHS
    return not (named or config.option.markexpr or config.option.keyword) \
        and os.environ.get("SWARM_TEST_TIER", "fast") == "fast"  # fmt: skip


def pytest_ignore_collect(collection_path, config: pytest.Config) -> bool | None:
    """In a whole default run, the heavy suites are not collected at all (their imports cost seconds)."""
    if not _whole_default_run(config):
        return None
    relative = os.path.relpath(str(collection_path), TESTS_DIR).replace(os.sep, "/")
    return True if any(relative == p.rstrip("/") or relative.startswith(p) for p in HEAVY_PATHS) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_fast(item):
            item.add_marker(pytest.mark.fast)
    if not _whole_default_run(config):
        return
    keep = [item for item in items if is_fast(item)]
    dropped = [item for item in items if not is_fast(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str | None:
    if _whole_default_run(config):
        return "tier: fast (no servers, no model); `make test` runs every tier, SWARM_TEST_TIER=all pytest too"
    return None
