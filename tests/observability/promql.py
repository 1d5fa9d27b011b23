"""PromQL helpers for the observability tests: metric names in an expression, and the known names."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import yaml

from observability import metrics as m

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "docker" / "prometheus"
RULES = PROM_DIR / "alerts.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "swarm-dashboard.json"

# Series Prometheus makes itself for every target.
PROMETHEUS_BUILTINS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MODIFIER_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:])(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


class PromQLNameError(ValueError):
    pass


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords, labels, numbers dropped)."""
    if "__name__" in expr:
        raise PromQLNameError(f"select metrics by name, not with __name__: {expr}")
    s = _STRING.sub(" ", expr)
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    s = _MODIFIER_LIST.sub(" ", s)  # by (...), on (...), group_left (...)
    s = re.sub(r"\boffset\s+-?\S+", " ", s)
    s = re.sub(r"@\s*\S+", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)  # Grafana variables outside ranges
    s = _NUMBER.sub(" ", s)
    names = set()
    for match in _IDENT.finditer(s):
        token = match.group(0)
        if token.lower() in _KEYWORDS or s[match.end() :].lstrip().startswith("("):
            continue  # a keyword or a function call
        names.add(token)
    return names


def substitute_grafana_variables(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def load_rules(path: Path = RULES) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def recording_rule_names(path: Path = RULES) -> set[str]:
    return {rule["record"] for rule in load_rules(path) if "record" in rule}


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, rows' nested panels included."""
    out = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def load_dashboard(path: Path = DASHBOARD) -> dict:
    return json.loads(path.read_text())


@lru_cache(maxsize=1)
def django_prometheus_names() -> frozenset[str]:
    """Series names django-prometheus defines (middleware, database and cache metrics)."""
    import django_prometheus.cache.metrics  # defines its metrics on import
    import django_prometheus.db.metrics  # noqa: F401
    from django_prometheus.middleware import Metrics
    from prometheus_client import REGISTRY

    Metrics.get_instance()
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("django_"):
            names |= m.sample_names(family)
    return frozenset(names)


def exporter_collector_names() -> set[str]:
    """What the exporter's collector declares (describe), without touching Redis."""
    import redis

    from observability.exporter import SwarmExporterCollector

    collector = SwarmExporterCollector(redis_client=redis.Redis(host="127.0.0.1", port=1), queue_names=[])
    return {name for family in collector.describe() for name in m.sample_names(family)}


def swarm_metric_names() -> set[str]:
    """What observability.metrics defines with prometheus_client, plus its derived ratios."""
    names: set[str] = set()
    for metric in m.SWARM_METRICS:
        for family in metric.describe():
            names |= m.sample_names(family)
    return names | {name for spec in m.DERIVED_METRICS for name in m.sample_names(spec.family())}


def known_names(rules: Path = RULES) -> frozenset[str]:
    return frozenset(
        swarm_metric_names()
        | exporter_collector_names()
        | django_prometheus_names()
        | recording_rule_names(rules)
        | PROMETHEUS_BUILTINS
    )


def unknown_names(exprs: list[tuple[str, str]], known: frozenset[str]) -> dict[str, set[str]]:
    """{where: names not in known} for every expression that uses an unknown name."""
    out: dict[str, set[str]] = {}
    for where, expr in exprs:
        missing = metric_names(expr) - known
        if missing:
            out.setdefault(where, set()).update(missing)
    return out
