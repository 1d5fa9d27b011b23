"""DATABASE_URL switches the whole stack to PostgreSQL (the local server on 127.0.0.1:5432)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.stack import Stack, wait_for

pytestmark = pytest.mark.integration

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url():
    name = f"swarm_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_stack_runs_on_postgresql(postgres_url, private_redis):
    stack = Stack.build(redis_url=private_redis.url, database_url=postgres_url)
    try:
        health = stack.start().wait_healthy()
        assert health["checks"]["db"]["vendor"] == "postgresql"
        body = stack.post("/orchestrate", {"prompt": "What is 12*12?"}).json()
        assert body["answer"] == "144"

        def logged():
            with psycopg.connect(postgres_url.replace("postgres://", "postgresql://")) as conn:
                return conn.execute(
                    "SELECT answer, route FROM routing_interaction WHERE request_id = %s", (body["request_id"],)
                ).fetchone()

        assert wait_for(logged, timeout=15, what="the interaction row in PostgreSQL") == ("144", "council")
    finally:
        stack.stop()
