"""The Titanic headline: what the gateway got right on its own, per part (tuning, heldout) and overall.

Every figure is computed from per-item records (the report's `items`: route, skill_type, provider,
answer, ok, score, confidence, category, part, cost_usd, must_abstain). An item's origin:

- "local": answered by the gateway itself: route cache, pattern, council or local, with an answer
  that is not UNSURE and did not come from the paid chain;
- "cloud": answered by the paid chain: route "cloud", or a cache hit of an answer the paid chain gave
  (it carries the provider's name, or skill_type "cloud"). In the benchmark's own stack the paid chain
  is the reference-replay provider (bench/replay_provider.py), right by construction;
- "unsure": the gateway said UNSURE (route "unsure", or the answer "UNSURE"): the council declined
  and no paid call answered (none allowed, none configured, or the cloud is off);
- "error": no answer (an HTTP error or a timeout); "other": an answer on a route this file does not know.

The replay's answers are counted apart (`replay`), never as the gateway's. A must-be-unsure item (a
stub trap) that the council declined is the right decision but not a local answer: it counts in
`declined_must_abstain`, not in local_accuracy_all. A local refusal that says why (the unknowable head,
route "council") is a local answer like any other, scored by the item's scorer: right on a stub trap,
wrong (and confidently wrong) on an answerable item.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.split import PARTS

LOCAL, CLOUD, UNSURE, ERROR, OTHER = "local", "cloud", "unsure", "error", "other"
LOCAL_ROUTES = frozenset({"cache", "pattern", "council", "local"})
UNSURE_ANSWER = "UNSURE"
DEFAULT_FLOOR = 0.75  # SWARM_MIN_CONFIDENCE's default (swarm_site/settings.py)
_EPS = 1e-9

DEFINITIONS = {
    "origin": (
        "local: route cache/pattern/council/local with an answer that is not UNSURE and not from the paid chain; "
        "cloud: route 'cloud', or a cache hit of a paid-chain answer (provider set or skill_type 'cloud'); "
        "unsure: route 'unsure' or the answer 'UNSURE'; error: no answer (HTTP error, timeout)"
    ),
    "local_accuracy_all": "items of origin local that score 1, over ALL items of the part (the headline)",
    "accuracy_of_local_answers": "items of origin local that score 1, over the items of origin local",
    "confidently_wrong_rate": (
        "items of origin local with confidence at or above the floor (SWARM_MIN_CONFIDENCE; a served answer "
        "without a confidence counts as at the floor) that score below 1 (every scorer gives 0 or 1), over "
        "ALL items of the part"
    ),
    "escalation_rate": (
        "items of origin cloud or unsure, over ALL items: what went to the paid chain, or would have "
        "(UNSURE: the council declined and no paid call answered)"
    ),
    "cost_usd": "what the gateway billed for the part's items at the configured provider prices",
    "declined_must_abstain": (
        "must-be-unsure items (stub traps) of origin cloud or unsure: the right decision, yet not a local "
        "answer, so not in local_accuracy_all"
    ),
    "replay": "answers of origin cloud: the reference-replay provider's, right by construction, not in the headline",
    "composite_with_replay": (
        "the former headline: mean item score over all items, replay answers (right by construction) included"
    ),
}


def origin(record: Mapping[str, Any]) -> str:
    """Where an item's answer came from: local | cloud | unsure | error | other (see the module doc)."""
    route = str(record.get("route") or "error")
    if not record.get("ok", True) or route == "error":
        return ERROR
    if route == "unsure" or str(record.get("answer") or "").strip() == UNSURE_ANSWER:
        return UNSURE
    if route == "cloud":
        return CLOUD
    if route in LOCAL_ROUTES:
        from_paid_chain = bool(record.get("provider")) or record.get("skill_type") == "cloud"
        return CLOUD if from_paid_chain else LOCAL
    return OTHER


def right(record: Mapping[str, Any]) -> bool:
    return float(record.get("score") or 0.0) >= 1.0


def confident(record: Mapping[str, Any], floor: float) -> bool:
    """Served at or above the floor (a served answer whose confidence is unknown counts as confident)."""
    confidence = record.get("confidence")
    return confidence is None or float(confidence) >= floor - _EPS


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(records: Iterable[Mapping[str, Any]], *, floor: float = DEFAULT_FLOOR) -> dict[str, Any]:
    """The headline figures of a set of items (see DEFINITIONS)."""
    records = list(records)
    n = len(records)
    origins = [origin(r) for r in records]
    local = [r for r, o in zip(records, origins, strict=True) if o == LOCAL]
    local_right = sum(right(r) for r in local)
    wrong = [r for r in local if not right(r)]
    confidently_wrong = sum(confident(r, floor) for r in wrong)
    declined = sum(bool(r.get("must_abstain")) and o in (CLOUD, UNSURE) for r, o in zip(records, origins, strict=True))
    tally = Counter(origins)
    cost = round(sum(float(r.get("cost_usd") or 0.0) for r in records), 6)
    return {
        "n": n,
        "local_accuracy_all": _ratio(local_right, n),
        "accuracy_of_local_answers": _ratio(local_right, len(local)),
        "confidently_wrong_rate": _ratio(confidently_wrong, n),
        "escalation_rate": _ratio(tally[CLOUD] + tally[UNSURE], n),
        "cost_usd": cost,
        "counts": {
            "local_answers": len(local),
            "local_right": local_right,
            "confidently_wrong": confidently_wrong,
            "local_wrong_below_floor": len(wrong) - confidently_wrong,
            "escalated": tally[CLOUD] + tally[UNSURE],
            "cloud": tally[CLOUD],
            "unsure": tally[UNSURE],
            "errors": tally[ERROR],
            "other": tally[OTHER],
            "declined_must_abstain": declined,
        },
    }


def _with_categories(records: list[Mapping[str, Any]], floor: float) -> dict[str, Any]:
    by_category: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        by_category[str(r.get("category", ""))].append(r)
    return {**figures(records, floor=floor),
            "by_category": {c: figures(rs, floor=floor) for c, rs in sorted(by_category.items())}}  # fmt: skip


def headline(records: Iterable[Mapping[str, Any]], *, floor: float = DEFAULT_FLOOR) -> dict[str, Any]:
    """{"overall", "tuning", "heldout"}: each the figures and their per-category breakdown."""
    records = list(records)
    out = {"overall": _with_categories(records, floor)}
    for part in PARTS:
        out[part] = _with_categories([r for r in records if r.get("part") == part], floor)
    return out


def replay(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The paid chain's answers (the replay provider's in the benchmark's stack), apart from the headline."""
    records = list(records)

    def block(rs: list[Mapping[str, Any]]) -> dict[str, Any]:
        paid = [r for r in rs if origin(r) == CLOUD]
        return {"answers": len(paid), "share": _ratio(len(paid), len(rs)),
                "right": sum(right(r) for r in paid), "via_cache": sum(r.get("route") == "cache" for r in paid),
                "cost_usd": round(sum(float(r.get("cost_usd") or 0.0) for r in paid), 6)}  # fmt: skip

    providers = Counter(str(r.get("provider") or "?") for r in records if origin(r) == CLOUD)
    return {**block(records), "providers": dict(providers.most_common()),
            "by_part": {part: block([r for r in records if r.get("part") == part]) for part in PARTS}}  # fmt: skip


def composite(records: Iterable[Mapping[str, Any]]) -> float | None:
    """The former headline: the mean score over all items, replay answers included."""
    scores = [float(r.get("score") or 0.0) for r in records]
    return round(sum(scores) / len(scores), 4) if scores else None


# --- the held-out targets (the release gate's titanic stage) ---------------------------------------


@dataclass(frozen=True)
class Threshold:
    figure: str  # a key of `figures`
    op: str  # ">=" (at least) or "<=" (at most)
    value: float
    env: str  # the environment variable that overrides it in the gate

    def check(self, block: Mapping[str, Any], value: float | None = None) -> dict[str, Any]:
        """{figure, op, target, value, met, short_by}: short_by is how far the figure misses (0 when met)."""
        target = self.value if value is None else value
        got = block.get(self.figure)
        if got is None:
            return {"figure": self.figure, "op": self.op, "target": target, "value": None, "met": False,
                    "short_by": None}  # fmt: skip
        gap = target - got if self.op == ">=" else got - target
        return {"figure": self.figure, "op": self.op, "target": target, "value": got, "met": gap <= _EPS,
                "short_by": round(max(gap, 0.0), 4)}  # fmt: skip


# Judged on the held-out part only: the tuning part is where heads, guards and thresholds were tuned.
MIN_LOCAL_ACCURACY_ALL = Threshold("local_accuracy_all", ">=", 0.70, "GATE_TITANIC_MIN_LOCAL_ACCURACY_ALL")
MAX_CONFIDENTLY_WRONG_RATE = Threshold("confidently_wrong_rate", "<=", 0.01, "GATE_TITANIC_MAX_CONFIDENTLY_WRONG_RATE")
MIN_ACCURACY_OF_LOCAL_ANSWERS = Threshold("accuracy_of_local_answers", ">=", 0.97,
                                          "GATE_TITANIC_MIN_ACCURACY_OF_LOCAL_ANSWERS")  # fmt: skip
HELDOUT_THRESHOLDS = (MIN_LOCAL_ACCURACY_ALL, MAX_CONFIDENTLY_WRONG_RATE, MIN_ACCURACY_OF_LOCAL_ANSWERS)


def check_heldout(report: Mapping[str, Any], targets: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Each held-out threshold against report["headline"]["heldout"]; `targets` (figure -> value) overrides."""
    block = report["headline"]["heldout"]
    targets = targets or {}
    return [t.check(block, targets.get(t.figure)) for t in HELDOUT_THRESHOLDS]
