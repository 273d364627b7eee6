"""Every Prometheus metric of the bus, declared in one place (the sinks' own are in sinks/metrics.py).

Each process exports only its own series: every metric is declared on the registry of the
process that updates it (:data:`GATEWAY`, :data:`WORKER`, :data:`SINK`, :data:`LAG`, each also
holding the standard process, platform and GC collectors), and each process serves its own
(:func:`serve`; the gateway mounts ``make_asgi_app(registry=GATEWAY)``). ``techne_dlq_total`` is
on both the worker's and the sinks' registries (each process counts its own stages).

Every known label set of a counter is created at start (:func:`declare_gateway`,
:func:`declare_worker`, ``sinks.metrics.declare_sink``), at 0: a labelled counter has no series
until its first increment otherwise, and ``increase(...)`` over a series that appears at 1 is
0, so an isolated first dead letter, undecodable message, insert error or 500 would never alert.
The reason codes are listed here (:data:`DLQ_REASONS`); ``tests/unit/test_metrics.py`` checks that
every reason code raised in the code is listed.

Labels never carry personal data or unbounded values: venue ids, partner ids, purposes,
event types, stages, short reason codes, HTTP statuses, consumer groups of the bus, topics and
partition numbers only. :data:`BOUNDED_LABELS` lists every label name a metric may use;
``tests/unit/test_metrics.py`` checks every registered metric against it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector


def _registry() -> CollectorRegistry:
    """A process's registry: its own metrics plus the standard process, platform and GC series."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


GATEWAY = _registry()
WORKER = _registry()
SINK = _registry()
LAG = _registry()

# dead-letter reason codes per stage (techne.errors.InvalidMessage(stage, reason)): the worker's
# stages, and what a sink dead-letters (stage "sink", the reason of whatever refused the message)
DLQ_REASONS: dict[str, tuple[str, ...]] = {
    "decode": ("truncated", "bad_magic", "unknown_schema", "corrupt_body", "trailing_bytes", "not_a_record",
               "bad_seal", "key_unreadable"),  # sealed fields that do not open (schemas/sealing.py,
    # streams/keystore.py: a key on the key topic this worker cannot unwrap)
    "encode": ("schema_mismatch",),
    "route": ("unshareable",),
    "sink": ("tombstone", "truncated", "bad_magic", "unknown_schema", "unexpected_schema", "corrupt_body",
             "trailing_bytes", "not_a_record", "bad_uuid", "timestamp_out_of_range", "bad_timestamp", "bad_value",
             "missing_field", "not_json", "not_an_object", "wrong_partner", "schema_mismatch"),
}
WORKER_DLQ_STAGES = ("decode", "encode", "route")
ERASURE_REASONS = ("erasure_request", "consent_withdrawn", "consent_expired")
ERROR_STATUSES = ("500", "503")

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
                   ["venue", "status"], registry=GATEWAY)
INGEST_EVENTS = Counter("techne_gateway_events_total", "Events accepted by the gateway, by venue and type.",
                        ["venue", "event_type"], registry=GATEWAY)
PRODUCE_SECONDS = Histogram("techne_gateway_produce_seconds", "Time until Kafka acknowledged an accepted event.",
                            registry=GATEWAY)
LAST_EVENT = Gauge("techne_gateway_last_event_timestamp_seconds",
                   "Unix time of the last event accepted per venue (the gateway's start time until the first).",
                   ["venue"], registry=GATEWAY)
INGEST_REJECTED = Counter("techne_gateway_events_rejected_total",
                          "Events refused by the venue side (whole requests and batch items), by reason.",
                          ["venue", "reason"], registry=GATEWAY)
WEBHOOK_REPLAYS = Counter("techne_gateway_webhook_replays_total",
                          "Requests whose webhook-id was already accepted (answered again, nothing produced).",
                          ["venue"], registry=GATEWAY)
SPOOLED = Counter("techne_spool_appended_total", "Events written to the durable spool instead of Kafka.",
                  registry=GATEWAY)
SPOOL_REPLAYED = Counter("techne_spool_replayed_total", "Spooled events acknowledged by Kafka after a replay.",
                         registry=GATEWAY)
SPOOL_RECONCILED = Counter("techne_spool_reconciled_total",
                           "In-flight spooled events found already on their topic (not sent again).", registry=GATEWAY)
SPOOL_DEPTH = Gauge("techne_spool_depth", "Events waiting in the durable spool for Kafka.", registry=GATEWAY)
SPOOL_OLDEST_AGE = Gauge("techne_spool_oldest_age_seconds", "Age of the oldest event waiting in the spool.",
                         registry=GATEWAY)
SILENCE_THRESHOLD = Gauge("techne_venue_silence_threshold_seconds",
                          "Silence after which TechneVenueSilent fires for a venue (TECHNE_VENUE_SILENCE_HOURS).",
                          ["venue"], registry=GATEWAY)

# --- stream processing -----------------------------------------------------------------
STREAM_EVENTS = Counter("techne_stream_events_total", "Raw events processed by the worker, by type.",
                        ["event_type"], registry=WORKER)
CONSENT_UPDATES = Counter("techne_consent_updates_total", "Consent ledger changes, by purpose and outcome.",
                          ["purpose", "outcome"], registry=WORKER)
CONSENT_DROPS = Counter("techne_consent_dropped_total",
                        "Events not shared because the subject has no consent (dropped on purpose).",
                        ["partner", "purpose"], registry=WORKER)
ROUTED = Counter("techne_routed_total", "Events shared with a partner, by partner and purpose.",
                 ["partner", "purpose"], registry=WORKER)
ERASURES_ISSUED = Counter("techne_erasures_issued_total",
                          "Erasure commands sent to partners after a withdrawal or an erasure request.",
                          ["partner", "reason"], registry=WORKER)
DEAD_LETTERS = Counter("techne_dlq_total", "Messages sent to a dead-letter topic, by stage and reason.",
                       ["stage", "reason"], registry=WORKER)
SINK.register(DEAD_LETTERS)  # the sinks' stage "sink" (sinks/dlq.py)


# --- Kafka consumer lag (`techne lag --serve`, see techne/lag.py) -------------------------------
CONSUMER_LAG = Gauge("techne_consumer_lag",
                     "Records not yet consumed by a consumer group of the bus: end offset minus committed offset "
                     "(minus the log start when nothing is committed).",
                     ["group", "topic", "partition"], registry=LAG)
LAG_ERRORS = Counter("techne_lag_collect_errors_total", "Failed consumer-lag measurements of `techne lag --serve`.",
                     registry=LAG)


def declare_gateway(venues: Iterable[str], silence_hours: Mapping[str, float]) -> None:
    """Create the gateway's series at start: per venue its last-event time (a venue silent since
    then still alerts) and silence threshold, and its 5xx answers at 0 (``unknown`` included).

    ``silence_hours`` maps venue ids to hours, ``"*"`` being the default for the others.
    """
    now = time.time()
    venues = list(venues)
    for venue in venues:
        LAST_EVENT.labels(venue=venue).set(now)
        hours = silence_hours.get(venue, silence_hours.get("*", 6.0))
        SILENCE_THRESHOLD.labels(venue=venue).set(hours * 3600)
    for venue in [*venues, "unknown"]:
        for status in ERROR_STATUSES:
            INGESTED.labels(venue=venue, status=status)



def declare_worker(shares: Iterable[tuple[str, str]]) -> None:
    """Create the worker's labelled series at 0: dead letters of its stages by reason, and per
    (partner, purpose) of the agreements, routed and dropped events and erasures issued."""
    for stage in WORKER_DLQ_STAGES:
        for reason in DLQ_REASONS[stage]:
            DEAD_LETTERS.labels(stage=stage, reason=reason)
    for partner, purpose in shares:
        ROUTED.labels(partner=partner, purpose=purpose)
        CONSENT_DROPS.labels(partner=partner, purpose=purpose)
        for reason in ERASURE_REASONS:
            ERASURES_ISSUED.labels(partner=partner, reason=reason)


def serve(port: int | None, host: str, registry: CollectorRegistry) -> None:
    """Expose ``registry`` (the calling process's own) on ``host:port``/metrics in a background
    thread (no-op when ``port`` is None)."""
    if port is not None:
        start_http_server(port, addr=host, registry=registry)
