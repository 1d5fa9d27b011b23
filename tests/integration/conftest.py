from __future__ import annotations

import pytest
import redis


@pytest.fixture(autouse=True)
def empty_answer_cache(request):
    """Each test starts with no cached answers, whatever ran before it on the shared stack."""
    if "stack" in request.fixturenames:
        client = redis.Redis.from_url(request.getfixturevalue("shared_redis_url"))
        keys = list(client.scan_iter(match="cache:*", count=500))
        if keys:
            client.delete(*keys)
