"""The tuning / held-out split: one rule, chosen once, for every benchmark's data (bench/README.md).

The rule. A member of a data set has a key: the Titanic suite's paraphrase items their `group`,
every other Titanic item its `id`; a paraphrase group of mining/data/paraphrases.yaml its `id`, and
its paraphrases and near misses go with it. The member is held out when the first byte of
sha256("<set name>:<key>") is below HELDOUT_BELOW (85 of 256 values: 33.2 %). Keys sharing a group
stay on one side, so no paraphrase of a held-out question is tuned on. One question asked in two
sets is one question: a Titanic key with a prompt (normalized as the replay provider matches
prompts) that is also a paraphrase or near miss of a paraphrase group takes that group's part
(the group with the smallest id when several). Last, a category (the stratum: the Titanic
category, the paraphrase group's `kind`) that is left with no held-out key gives up its one free
key (not taken from another set) with the lowest digest, so every category is tested on held-out data.

Heads, guards, thresholds and prompts are tuned on the tuning part only; the held-out part is only
measured. A gap between the two parts' figures is overfitting.

`python -m bench.split` prints the counts per part and category and each set's held-out digest.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.replay_provider import normalize_prompt

ROOT = Path(__file__).resolve().parent.parent
PARAPHRASES_PATH = ROOT / "mining" / "data" / "paraphrases.yaml"

TUNING = "tuning"
HELDOUT = "heldout"
PARTS = (TUNING, HELDOUT)
HELDOUT_BELOW = 85  # first digest byte < 85 -> held out
HELDOUT_FRACTION = HELDOUT_BELOW / 256  # 0.332

RULE = (
    f"heldout when sha256('<set>:<key>')[0] < {HELDOUT_BELOW} ({HELDOUT_FRACTION:.1%}); key: a Titanic item's "
    "paraphrase group else its id, a paraphrase group's id (its near misses go with it); a Titanic question "
    "that is also in a paraphrase group follows that group; a category left without held-out keys gives up "
    "its free key with the lowest digest"
)
# The set names salted into the hash: renaming one reshuffles its split.
TITANIC = "titanic"
PARAPHRASES = "paraphrases"


def digest(set_name: str, key: str) -> bytes:
    """sha256 of "<set name>:<key>" (UTF-8)."""
    return hashlib.sha256(f"{set_name}:{key}".encode()).digest()


def held_out_by_rule(set_name: str, key: str) -> bool:
    """The plain rule, before the every-category guarantee."""
    return digest(set_name, key)[0] < HELDOUT_BELOW


def split(
    set_name: str, members: Iterable[tuple[str, str]], *, taken: Mapping[str, str] | None = None
) -> dict[str, str]:
    """key -> part for (key, category) pairs; a key listed twice (a group's members) keeps its first
    category. `taken`: key -> part for keys that follow another set (the same question there)."""
    taken = taken or {}
    category: dict[str, str] = {}
    for key, stratum in members:
        category.setdefault(key, stratum)
    parts = {key: taken.get(key) or (HELDOUT if held_out_by_rule(set_name, key) else TUNING) for key in category}
    strata: dict[str, list[str]] = defaultdict(list)
    for key, stratum in category.items():
        strata[stratum].append(key)
    for keys in strata.values():
        if not any(parts[key] == HELDOUT for key in keys):
            free = [key for key in keys if key not in taken] or keys
            parts[min(free, key=lambda k: digest(set_name, k))] = HELDOUT
    return parts


def heldout_digest(keys: Iterable[str]) -> str:
    """sha256 of the sorted held-out keys, one per line: pins a split (tests/bench/test_split.py)."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


# --- the Titanic suite ---------------------------------------------------------------------------


def titanic_key(item: Any) -> str:
    """A Titanic item's split key: its paraphrase group, else its id."""
    return str(item.group or item.id)


def shared_questions(items: Iterable[Any], groups: list[dict[str, Any]]) -> dict[str, str]:
    """Titanic item id -> the paraphrase group that asks the same (normalized) prompt, smallest group id first."""
    asked_in: dict[str, str] = {}
    for group in sorted(groups, key=lambda g: str(g["id"])):
        for prompt in [*group.get("paraphrases", []), *group.get("near_misses", [])]:
            asked_in.setdefault(normalize_prompt(prompt), str(group["id"]))
    return {item.id: asked_in[key] for item in items if (key := normalize_prompt(item.prompt)) in asked_in}


def titanic_parts(items: Iterable[Any], groups: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """item id -> part for the Titanic suite's items (bench.titanic.suite.Item); a question that is also
    in a paraphrase group (`groups`, default mining/data/paraphrases.yaml) follows that group."""
    items = sorted(items, key=lambda i: i.id)
    by_id = {item.id: item for item in items}
    groups = load_paraphrase_groups() if groups is None else groups
    group_parts = paraphrase_parts(groups)
    taken: dict[str, str] = {}
    for item_id, group_id in shared_questions(items, groups).items():
        taken.setdefault(titanic_key(by_id[item_id]), group_parts[group_id])
    by_key = split(TITANIC, ((titanic_key(item), item.category) for item in items), taken=taken)
    return {item.id: by_key[titanic_key(item)] for item in items}


# --- the paraphrase groups (with their near misses) ----------------------------------------------


def load_paraphrase_groups(path: Path = PARAPHRASES_PATH) -> list[dict[str, Any]]:
    """The groups of mining/data/paraphrases.yaml (without Django: mining.evaluation reads the same file)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]


def paraphrase_parts(groups: Iterable[dict[str, Any]]) -> dict[str, str]:
    """group id -> part; a group's paraphrases and near misses all belong to its part."""
    return split(PARAPHRASES, ((str(g["id"]), str(g.get("kind", ""))) for g in groups))


# --- counts --------------------------------------------------------------------------------------


def counts(parts: dict[str, str], category: dict[str, str]) -> dict[str, dict[str, int]]:
    """part -> category -> number of members (`category`: member -> category), plus each part's total."""
    out: dict[str, dict[str, int]] = {}
    for part in PARTS:
        per = Counter(category[m] for m, p in parts.items() if p == part)
        out[part] = {"total": sum(per.values()), **dict(sorted(per.items()))}
    return out


def describe() -> dict[str, Any]:
    """Every split set's counts and held-out digest (what bench/README.md records)."""
    from bench.titanic.suite import load_suite

    suite = load_suite()
    titanic = titanic_parts(suite.items)
    groups = load_paraphrase_groups()
    by_group = paraphrase_parts(groups)
    kinds = {str(g["id"]): str(g.get("kind", "")) for g in groups}
    prompts = {"paraphrases": {}, "near_misses": {}}
    for field in prompts:
        for part in PARTS:
            members = [g for g in groups if by_group[str(g["id"])] == part]
            prompts[field][part] = sum(len(g.get(field, [])) for g in members)
    return {
        "rule": RULE,
        TITANIC: {"items": counts(titanic, {i.id: i.category for i in suite.items}),
                  "shared_with_paraphrases": len(shared_questions(suite.items, groups)),
                  "heldout_digest": heldout_digest(k for k, p in titanic.items() if p == HELDOUT)},
        PARAPHRASES: {"groups": counts(by_group, kinds), "prompts": prompts,
                      "heldout_digest": heldout_digest(k for k, p in by_group.items() if p == HELDOUT)},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The tuning / held-out split of every benchmark set")
    parser.parse_args(argv)
    info = describe()
    print(info["rule"])
    for name in (TITANIC, PARAPHRASES):
        block = info[name]
        table = block.get("items") or block["groups"]
        unit = "items" if "items" in block else "groups"
        for part in PARTS:
            row = table[part]
            cats = ", ".join(f"{c} {n}" for c, n in row.items() if c != "total")
            print(f"{name:<12} {part:<8} {row['total']:>4} {unit}: {cats}")
        if "prompts" in block:
            for field, per in block["prompts"].items():
                print(f"{name:<12} {field}: " + ", ".join(f"{p} {n}" for p, n in per.items()))
        print(f"{name:<12} heldout digest {block['heldout_digest']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
