"""Mining fixtures: DB 11 of the run's Redis (flushed around each test), the paraphrases, seeded interactions."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from django.utils import timezone

from mining import runtime
from mining.embeddings import is_available
from routing.models import Interaction
from swarm_site.redis_client import get_redis
from tests.stack import run_redis_url

MINING_REDIS_URL = run_redis_url(11)
DATA = Path(__file__).resolve().parents[2] / "mining" / "data" / "paraphrases.yaml"
SEEN = 3  # paraphrases per group seeded as answered; the rest are looked up unseen

requires_ml = pytest.mark.skipif(
    not is_available(), reason="ML dependencies missing: pip install -r requirements/ml.txt"
)
_request_ids = itertools.count()


@pytest.fixture(scope="session")
def paraphrase_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(DATA.read_text(encoding="utf-8"))["groups"]


@pytest.fixture
def mining_redis(settings):
    """REDIS_URL -> DB 11, empty; a fresh pattern index that checks the version on every lookup."""
    settings.REDIS_URL = MINING_REDIS_URL
    get_redis.cache_clear()
    client = redis.Redis.from_url(MINING_REDIS_URL, decode_responses=True)
    client.flushdb()
    runtime.reset_index(reload_interval_s=0.0)
    yield client
    runtime.reset_index()  # flushes the pending hit counts of the test's index into DB 11 first
    client.flushdb()
    get_redis.cache_clear()


def log_interaction(prompt: str, answer: str, *, route: str = "cloud", skill_type: str = "cloud",
                    confidence: float = 0.9, when: datetime | None = None, **extra: Any) -> Interaction:  # fmt: skip
    """One interaction as the bookkeeping worker would have logged it."""
    return Interaction.objects.create(
        request_id=f"test-{next(_request_ids)}",
        created_at=when or timezone.now() - timedelta(minutes=5),
        prompt=prompt,
        answer=answer,
        route=route,
        skill_type=skill_type,
        confidence=confidence,
        **extra,
    )


def seed_groups(groups: list[dict[str, Any]], seen: int = SEEN) -> int:
    """The first `seen` paraphrases of every group, answered by the cloud with the reference answer."""
    n = 0
    for group in groups:
        for prompt in group["paraphrases"][:seen]:
            log_interaction(prompt, group["answer"])
            n += 1
    return n
