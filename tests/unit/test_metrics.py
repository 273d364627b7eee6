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
    registered = {c for r in (core.metrics.GATEWAY, core.metrics.WORKER, core.metrics.SINK, core.metrics.LAG)
                  for c in r._names_to_collectors.values()}
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


def _families(registry: prometheus_client.CollectorRegistry) -> set[str]:
    return {m.name for m in registry.collect()}


def test_each_process_exports_only_its_own_series() -> None:
    """The worker, sinks and lag exporter used to export the gateway's series as zeros."""
    m = core.metrics
    own = {"gateway": (m.GATEWAY, ("techne_gateway_", "techne_spool_", "techne_venue_")),
           "worker": (m.WORKER, ("techne_stream_", "techne_consent_", "techne_routed", "techne_erasures_",
                                 "techne_dlq")),
           "sink": (m.SINK, ("techne_sink_", "techne_dlq")),
           "lag": (m.LAG, ("techne_consumer_lag", "techne_lag_"))}
    for name, (registry, prefixes) in own.items():
        families = _families(registry)
        techne_families = {f for f in families if f.startswith("techne_")}
        assert techne_families, name
        assert all(f.startswith(prefixes) for f in techne_families), (name, sorted(techne_families))
        assert {"process_cpu_seconds", "python_gc_objects_collected"} <= families, name  # still the process's own
    assert not {f for f in _families(prometheus_client.REGISTRY) if f.startswith("techne_")}
    everything = [f for registry, _ in own.values() for f in _families(registry) if f.startswith("techne_")]
    assert {f for f in everything if everything.count(f) > 1} == {"techne_dlq"}  # worker's and sinks' stages


INVALID = re.compile(r'InvalidMessage\(\s*"(\w+)",\s*"(\w+)"')


def _raised(*paths: Path) -> set[tuple[str, str]]:
    found = set()
    for root in paths:
        for path in [root] if root.is_file() else root.rglob("*.py"):
            found |= set(INVALID.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_dead_letter_reason_raised_in_the_code_is_declared() -> None:
    """Else its label set would not be created at start (and its first letter would not alert)."""
    reasons = core.metrics.DLQ_REASONS
    # the worker runs codec.py and sealing.py (opened right after decoding) on every message
    worker = _raised(ROOT / "schemas" / "codec.py", ROOT / "schemas" / "sealing.py", ROOT / "streams")
    assert len(worker) >= 7
    for stage, reason in worker:
        assert stage in core.metrics.WORKER_DLQ_STAGES and reason in reasons[stage], (stage, reason)
    sink = _raised(ROOT / "schemas" / "codec.py", ROOT / "sinks")
    assert len(sink) >= 15
    assert {reason for _, reason in sink} <= set(reasons["sink"]), sorted({r for _, r in sink} - set(reasons["sink"]))


def test_known_label_sets_exist_at_zero_from_the_start() -> None:
    m = core.metrics
    m.declare_worker([("observatoire", "research")])
    m.declare_gateway(["opera-lyon"], {"*": 6})
    sinks.metrics.declare_sink("observatoire", ["ticket_orders", "erasures"])
    expected = [
        (m.WORKER, "techne_dlq_total", {"stage": "decode", "reason": "unknown_schema"}),
        (m.WORKER, "techne_dlq_total", {"stage": "route", "reason": "unshareable"}),
        (m.WORKER, "techne_dlq_total", {"stage": "decode", "reason": "bad_seal"}),
        (m.WORKER, "techne_erasures_issued_total", {"partner": "observatoire", "reason": "consent_withdrawn"}),
        (m.WORKER, "techne_routed_total", {"partner": "observatoire", "purpose": "research"}),
        (m.GATEWAY, "techne_gateway_requests_total", {"venue": "opera-lyon", "status": "500"}),
        (m.GATEWAY, "techne_gateway_requests_total", {"venue": "unknown", "status": "503"}),
        (m.SINK, "techne_dlq_total", {"stage": "sink", "reason": "bad_uuid"}),
        (m.SINK, "techne_sink_undecodable_total", {"partner": "observatoire", "table": "ticket_orders"}),
        (m.SINK, "techne_sink_insert_errors_total", {"partner": "observatoire", "table": "erasures"}),
        (m.SINK, "techne_sink_erasures_total", {"partner": "observatoire", "outcome": "erased"}),
        (m.SINK, "techne_sink_erased_rows_total", {"partner": "observatoire", "table": "ticket_orders"}),
    ]
    for registry, name, labels in expected:
        assert registry.get_sample_value(name, labels) is not None, (name, labels)
