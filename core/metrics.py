"""Every Prometheus metric of the bus, declared in one place (the sinks' own are in sinks/metrics.py).

Labels never carry personal data or unbounded values: venue ids, partner ids, purposes,
event types, stages, short reason codes, HTTP statuses, consumer groups of the bus, topics and
partition numbers only. :data:`BOUNDED_LABELS` lists every label name a metric may use;
``tests/unit/test_metrics.py`` checks every registered metric against it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge, Histogram, start_http_server

BOUNDED_LABELS = frozenset({
    "venue",       # ids of deploy/venues.yaml, or "unknown"
    "partner",     # ids of deploy/agreements
    "purpose",     # the Purpose enum
    "event_type",  # the schema catalogue's event types
    "status",      # HTTP status codes
    "outcome",     # applied | stale
    "stage",       # pipeline stages (dlq.<stage>)
    "reason",      # short machine-readable reason codes
    "group",       # consumer groups of the bus: the worker's and one per partner sink
    "topic",       # topics of the bus (raw.<venue>, partner.<partner>.<stream>)
    "partition",   # partition numbers (TECHNE_PARTITIONS)
    "table",       # tables of the sinks' stores (ticket_orders, erasures, decisions)
})

# --- gateway ---------------------------------------------------------------------------
INGESTED = Counter("techne_gateway_requests_total", "Webhook requests by venue and HTTP status.",
                   ["venue", "status"])
INGEST_EVENTS = Counter("techne_gateway_events_total", "Events accepted by the gateway, by venue and type.",
                        ["venue", "event_type"])
PRODUCE_SECONDS = Histogram("techne_gateway_produce_seconds", "Time until Kafka acknowledged an accepted event.")
LAST_EVENT = Gauge("techne_gateway_last_event_timestamp_seconds",
                   "Unix time of the last event accepted per venue (the gateway's start time until the first).",
                   ["venue"])
INGEST_REJECTED = Counter("techne_gateway_events_rejected_total",
                          "Events refused by the venue side (whole requests and batch items), by reason.",
                          ["venue", "reason"])
WEBHOOK_REPLAYS = Counter("techne_gateway_webhook_replays_total",
                          "Requests whose webhook-id was already accepted (answered again, nothing produced).",
                          ["venue"])
SPOOLED = Counter("techne_spool_appended_total", "Events written to the durable spool instead of Kafka.")
SPOOL_REPLAYED = Counter("techne_spool_replayed_total", "Spooled events acknowledged by Kafka after a replay.")
SPOOL_RECONCILED = Counter("techne_spool_reconciled_total",
                           "In-flight spooled events found already on their topic (not sent again).")
SPOOL_DEPTH = Gauge("techne_spool_depth", "Events waiting in the durable spool for Kafka.")
SPOOL_OLDEST_AGE = Gauge("techne_spool_oldest_age_seconds", "Age of the oldest event waiting in the spool.")
SILENCE_THRESHOLD = Gauge("techne_venue_silence_threshold_seconds",
                          "Silence after which TechneVenueSilent fires for a venue (TECHNE_VENUE_SILENCE_HOURS).",
                          ["venue"])

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


# --- Kafka consumer lag (`techne lag --serve`, see techne/lag.py) -------------------------------
CONSUMER_LAG = Gauge("techne_consumer_lag",
                     "Records not yet consumed by a consumer group of the bus: end offset minus committed offset "
                     "(minus the log start when nothing is committed).",
                     ["group", "topic", "partition"])
LAG_ERRORS = Counter("techne_lag_collect_errors_total", "Failed consumer-lag measurements of `techne lag --serve`.")


def declare_venues(venues: Iterable[str], silence_hours: Mapping[str, float]) -> None:
    """Create the per-venue gateway series at start (a venue silent since then still alerts).

    ``silence_hours`` maps venue ids to hours, ``"*"`` being the default for the others.
    """
    now = time.time()
    for venue in venues:
        LAST_EVENT.labels(venue=venue).set(now)
        hours = silence_hours.get(venue, silence_hours.get("*", 6.0))
        SILENCE_THRESHOLD.labels(venue=venue).set(hours * 3600)


def serve(port: int | None, host: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` on ``host:port`` in a background thread (no-op when ``port`` is None)."""
    if port is not None:
        start_http_server(port, addr=host)
