"""Metric declarations: one place, no personal data in labels, bounded label sets."""

from __future__ import annotations

import re
from pathlib import Path

import prometheus_client
from prometheus_client.metrics import MetricWrapperBase

import core.metrics
import sinks.metrics
from core.metrics import BOUNDED_LABELS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("techne", "schemas", "producers", "streams", "sinks")
METRIC_MODULES = {ROOT / "core" / "metrics.py", ROOT / "sinks" / "metrics.py"}
# words that would make a label carry a person, an identifier or a free value
PERSONAL = frozenset({"mail", "email", "phone", "subject", "pseudonym", "person", "name", "ip", "address", "user",
                      "customer", "id", "uuid", "key", "token", "ref", "order", "ticket", "birth", "birthdate",
                      "age", "zip", "postal", "device", "agent", "url", "path", "query", "message", "error"})


def personal(label: str) -> bool:
    return bool(PERSONAL & set(label.lower().split("_")))


def declared() -> list[MetricWrapperBase]:
    modules = (core.metrics, sinks.metrics)
    return [m for mod in modules for m in vars(mod).values() if isinstance(m, MetricWrapperBase)]


def test_metrics_are_declared_in_the_metric_modules_only() -> None:
    constructor = re.compile(r"\b(?:prometheus_client\.)?(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*[\"']")
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path in METRIC_MODULES:
                continue
            text = path.read_text(encoding="utf-8")
            assert not constructor.search(text), f"{path}: declare metrics in core/metrics.py"


def test_every_metric_is_named_documented_and_registered() -> None:
    registered = set(prometheus_client.REGISTRY._names_to_collectors.values())
    metrics = declared()
    assert len(metrics) >= 20
    for metric in metrics:
        assert metric._name.startswith("techne_"), metric._name
        assert len(metric._documentation) > 15, f"{metric._name}: say what it counts"
        assert metric in registered, metric._name


def test_no_label_name_is_personal_or_unbounded() -> None:
    for metric in declared():
        for label in metric._labelnames:
            assert label in BOUNDED_LABELS, f"{metric._name}: label {label!r} is not a known bounded label"
            assert not personal(label), f"{metric._name}: label {label!r} could carry personal data"
    assert not any(personal(label) for label in BOUNDED_LABELS)
    assert personal("event_id") and personal("subject_pseudonym") and personal("email")


def test_issue_coverage() -> None:
    """The metric families the issue asks for (the e2e latency histogram is the sinks' own, pending)."""
    names = {m._name for m in declared()}
    for wanted in ("techne_gateway_requests", "techne_gateway_events", "techne_stream_events",
                   "techne_consent_dropped", "techne_routed", "techne_dlq", "techne_consumer_lag",
                   "techne_sink_rows_inserted", "techne_sink_insert_seconds", "techne_sink_batches"):
        assert wanted in names, wanted
