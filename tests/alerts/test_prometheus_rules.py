"""docs/prometheus-alerts.yml is valid YAML of Prometheus rule groups, has a rule for every default
alert rule, and every metric its expressions name is one the engine serves at /metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

from messaging_whatsapp import metrics
from messaging_whatsapp.alerts.rules import DEFAULT_RULES

RULES_FILE = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"
METRIC = re.compile(r"\b(whatsapp_[a-z_]+)\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_sum", "_count", "_bucket"), "gauge": ("",)}


def _served() -> set[str]:
    """The sample names the engine's metrics expose."""
    assert metrics.ALERTS_OPEN is not None  # imported: registered
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_expression_names_metrics_the_engine_serves() -> None:
    served = _served()
    rules = _rules()
    assert len(rules) >= len(DEFAULT_RULES)
    for rule in rules:
        assert set(rule) == {"alert", "expr", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        named = set(METRIC.findall(rule["expr"]))
        assert named, rule["alert"]
        assert named <= served, (rule["alert"], named - served)


def test_every_default_rule_has_its_prometheus_rule() -> None:
    expressions = " ".join(rule["expr"] for rule in _rules())
    for kind in DEFAULT_RULES:
        covered = f'kind="{kind}"' in expressions or kind in {"send_error_rate", "provider_latency"}
        assert covered, kind
    assert "whatsapp_sender_messages_total" in expressions
    assert "whatsapp_provider_call_seconds_sum" in expressions
