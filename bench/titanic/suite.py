"""The suite file: load, validate, slice."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.replay_provider import normalize_prompt
from bench.split import PARTS, titanic_parts

ROOT = Path(__file__).resolve().parent.parent.parent
DATA_PATH = ROOT / "bench" / "data" / "titanic_v1.yaml"
CATEGORIES = ("chat", "arithmetic", "algebra", "code", "factual", "reasoning", "stub_trap", "paraphrase")
MICRO_SIZE = 40


@dataclass(frozen=True)
class Item:
    id: str
    category: str
    prompt: str
    reference: str
    scorer: str
    args: dict[str, Any] = field(default_factory=dict)
    group: str | None = None  # paraphrase group
    check: dict[str, Any] | None = None  # how the math reference is verified (tests/bench/test_data.py)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Item:
        return cls(id=str(raw["id"]), category=str(raw["category"]), prompt=str(raw["prompt"]),
                   reference=str(raw["reference"]), scorer=str(raw["scorer"]), args=dict(raw.get("args") or {}),
                   group=raw.get("group"), check=raw.get("check"))  # fmt: skip


@dataclass(frozen=True)
class Suite:
    version: str
    seed: int
    items: tuple[Item, ...]
    sha256: str
    path: Path

    def by_category(self) -> dict[str, list[Item]]:
        out: dict[str, list[Item]] = defaultdict(list)
        for item in self.items:
            out[item.category].append(item)
        return dict(out)

    def stratified(self, n: int) -> list[Item]:
        """`n` items of the whole suite, every category in proportion (see `stratified`)."""
        return stratified(list(self.items), n)

    def parts(self) -> dict[str, str]:
        """item id -> "tuning" | "heldout": the frozen split (bench/split.py)."""
        return titanic_parts(self.items)

    def part(self, name: str) -> list[Item]:
        """The items of one part ("tuning" or "heldout"), in suite order."""
        if name not in PARTS:
            raise ValueError(f"part {name!r} is not one of {', '.join(PARTS)}")
        parts = self.parts()
        return [item for item in self.items if parts[item.id] == name]


def stratified(items: list[Item], n: int) -> list[Item]:
    """`n` of `items`, every category represented in proportion (at least one each), evenly spaced
    inside each category so the slice is deterministic and spans the category; in the given order."""
    if n >= len(items):
        return list(items)
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.category].append(item)
    quota = {cat: max(1, round(n * len(members) / len(items))) for cat, members in groups.items()}
    while sum(quota.values()) > n:  # rounding overshoot: trim the largest quotas
        biggest = max(quota, key=lambda c: (quota[c], c))
        quota[biggest] -= 1
    while sum(quota.values()) < n:
        smallest = min(quota, key=lambda c: (quota[c] / len(groups[c]), c))
        quota[smallest] += 1
    chosen: list[Item] = []
    for cat, members in groups.items():
        k = min(quota[cat], len(members))
        step = len(members) / k
        chosen += [members[int(i * step)] for i in range(k)]
    order = {item.id: i for i, item in enumerate(items)}
    return sorted(chosen, key=lambda it: order[it.id])


def load_suite(path: Path = DATA_PATH) -> Suite:
    raw_bytes = path.read_bytes()
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in raw_bytes.decode().splitlines() if line.strip()]
        version, seed = path.stem, 0
    else:
        data = yaml.safe_load(raw_bytes)
        rows, version, seed = data["items"], str(data["version"]), int(data.get("seed", 0))
    items = tuple(Item.from_dict(row) for row in rows)
    return Suite(version=version, seed=seed, items=items, sha256=hashlib.sha256(raw_bytes).hexdigest(), path=path)


def validate(suite: Suite, scorers: set[str]) -> list[str]:
    """Problems with the suite (empty when it is sound)."""
    problems = []
    ids = [item.id for item in suite.items]
    if len(ids) != len(set(ids)):
        problems.append("duplicate ids")
    references: dict[str, str] = {}
    owners: dict[str, Item] = {}
    for item in suite.items:
        if item.category not in CATEGORIES:
            problems.append(f"{item.id}: unknown category {item.category}")
        if item.scorer not in scorers:
            problems.append(f"{item.id}: unknown scorer {item.scorer}")
        if not item.prompt.strip() or not item.reference.strip():
            problems.append(f"{item.id}: empty prompt or reference")
        key = normalize_prompt(item.prompt)
        if references.setdefault(key, item.reference) != item.reference:
            problems.append(f"{item.id}: same prompt as another item with a different reference")
        first = owners.setdefault(key, item)
        if first is not item and not (item.group and item.group == first.group):
            problems.append(f"{item.id}: repeats the prompt of {first.id} (only a paraphrase group may)")
        if item.category == "paraphrase" and not item.group:
            problems.append(f"{item.id}: paraphrase without a group")
    return problems
