"""Admin: list, inspect (members, answer, hits), disable action (bumps the version, mining keeps it off)."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from mining.guard import compile_guard, extract_slots
from mining.models import MiningRun, PatternHead
from tests.mining.conftest import log_interaction

pytestmark = pytest.mark.django_db


def make_head() -> PatternHead:
    members = [log_interaction("What is the capital of Australia?", "Canberra"),
               log_interaction("Which city is Australia's capital?", "Canberra")]  # fmt: skip
    head = PatternHead(
        name=members[0].prompt,
        threshold=0.85,
        canonical_answer="Canberra",
        support=2,
        confidence=1.0,
        slots=compile_guard(extract_slots(m.prompt) for m in members),
        hits=3,
        source_interaction_ids=[m.pk for m in members],
        sample_prompts=[m.prompt for m in members],
    )
    vector = np.zeros(384, dtype=np.float32)
    vector[0] = 1.0
    head.set_centroid(vector)
    head.save()
    return head


def test_list_and_inspect(admin_client, mining_redis):
    head = make_head()
    mining_redis.hset("swarm:patterns:hits", str(head.pk), 2)
    listing = admin_client.get(reverse("admin:mining_patternhead_changelist"))
    assert listing.status_code == 200 and b"Canberra" in listing.content
    page = admin_client.get(reverse("admin:mining_patternhead_change", args=[head.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Which city is Australia&#x27;s capital?" in body  # members
    assert "384 dims" in body and ">5<" in body.replace(" ", "")  # centroid, hits = 3 flushed + 2 pending
    MiningRun.objects.create(status=MiningRun.Status.OK)
    assert admin_client.get(reverse("admin:mining_miningrun_changelist")).status_code == 200


def test_disable_action_turns_a_head_off_for_good(admin_client, mining_redis):
    head = make_head()
    response = admin_client.post(reverse("admin:mining_patternhead_changelist"),
                                 {"action": "disable", "_selected_action": [head.pk]})  # fmt: skip
    assert response.status_code == 302
    head.refresh_from_db()
    assert not head.enabled and head.disabled_by_admin and "admin" in head.retired_reason
    assert head.version == 2 and mining_redis.get("swarm:patterns:version") == "1"
