"""Pattern mining through the running stack: mined heads answer unseen paraphrases, without a restart."""

from __future__ import annotations

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mining.evaluation import load_groups

pytestmark = pytest.mark.integration

SEED = """
import json, uuid
from django.utils import timezone
from routing.models import Interaction
rows = json.load(open("{path}"))
Interaction.objects.bulk_create([Interaction(request_id=uuid.uuid4().hex, created_at=timezone.now(), prompt=p,
    answer=a, route="cloud", skill_type="cloud", confidence=0.9, provider="seed") for p, a in rows])
"""


def test_new_heads_are_served_by_the_running_stack_without_restart(stack, tmp_path):
    groups = load_groups()[:12]
    unseen = [(g["paraphrases"][4], g["answer"]) for g in groups]
    before = [stack.post("/orchestrate", {"prompt": p}).json()["route"] for p, _ in unseen]
    assert "pattern" not in before

    rows = [(p, g["answer"]) for g in groups for p in g["paraphrases"][:3]]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    stack.manage("shell", "-c", SEED.format(path=tmp_path / "rows.json"))
    stack.manage("mine_once")

    after = [stack.post("/orchestrate", {"prompt": p, "max_tokens": 129}).json() for p, _ in unseen]
    served = [(body, answer) for body, (_, answer) in zip(after, unseen, strict=True) if body["route"] == "pattern"]
    assert len(served) >= len(unseen) // 3, [b["route"] for b in after]
    assert all(body["answer"] == answer and body["skill_type"] == "pattern" for body, answer in served)
    exported = {sample.name: sample.value for family in text_string_to_metric_families(
        requests.get(f"{stack.url}/metrics", timeout=10).text) for sample in family.samples}  # fmt: skip
    assert exported["swarm_pattern_heads"] >= len(groups) // 2 and exported["swarm_patterns_version"] >= 1
