"""Every Prometheus metric of the bus, declared in one place.

Labels never carry personal data or unbounded values: venue ids, partner ids, purposes,
event types, stages and short reason codes only.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

# --- gateway ---------------------------------------------------------------------------
INGESTED = Counter("techne_gateway_requests_total", "Webhook requests by venue and HTTP status.",
                   ["venue", "status"])
INGEST_EVENTS = Counter("techne_gateway_events_total", "Events accepted by the gateway, by venue and type.",
                        ["venue", "event_type"])
PRODUCE_SECONDS = Histogram("techne_gateway_produce_seconds", "Time until Kafka acknowledged an accepted event.")

# --- stream processing -----------------------------------------------------------------
STREAM_EVENTS = Counter("techne_stream_events_total", "Raw events processed by the worker, by type.",
                        ["event_type"])
CONSENT_UPDATES = Counter("techne_consent_updates_total", "Consent ledger changes, by purpose and outcome.",
                          ["purpose", "outcome"])
CONSENT_DROPS = Counter("techne_consent_dropped_total",
                        "Events not shared because the subject has no consent (dropped on purpose).",
                        ["partner", "purpose"])
ROUTED = Counter("techne_routed_total", "Events shared with a partner, by partner and purpose.",
                 ["partner", "purpose"])
ERASURES_ISSUED = Counter("techne_erasures_issued_total",
                          "Erasure commands sent to partners after a withdrawal or an erasure request.",
                          ["partner", "reason"])
DEAD_LETTERS = Counter("techne_dlq_total", "Messages sent to a dead-letter topic, by stage and reason.",
                       ["stage", "reason"])


def serve(port: int | None, host: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` on ``host:port`` in a background thread (no-op when ``port`` is None)."""
    if port is not None:
        start_http_server(port, addr=host)
