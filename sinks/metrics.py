"""Prometheus metrics of the sinks (on ``core.metrics.SINK``, the registry a sink process serves).

Labels: ``partner`` (the audit sink reports as ``_audit``, which no partner id can be),
``table`` (``ticket_orders``, ``erasures``, ``decisions``), ``topic``/``partition`` for lag.

- ``techne_sink_rows_inserted_total{partner,table}``: rows written (erasures: commands executed);
- ``techne_sink_batches_total{partner,table}``: batches written and committed;
- ``techne_sink_batch_messages{partner,table}``: histogram of messages per flushed batch;
- ``techne_sink_insert_seconds{partner,table}``: histogram of one idempotent batch write;
- ``techne_sink_insert_errors_total{partner,table}``: failed write attempts (never dropped);
- ``techne_sink_retries_total{partner}``: write attempts made after a failure (backoff);
- ``techne_sink_paused{partner}``: 1 while consumption is paused because the store fails;
- ``techne_sink_lag_messages{partner,topic,partition}``: broker high-water mark minus the first
  offset not yet committed (what is not yet durably in the store);
- ``techne_sink_duplicates_skipped_total{partner,table}``: rows already stored, not inserted;
- ``techne_sink_suppressed_total{partner,reason}``: rows withheld on purpose: ``erased`` (an
  erasure tombstone covers them) or ``expired`` (past retention on arrival);
- ``techne_sink_undecodable_total{partner,table}``: messages handed to the invalid-message hook;
- ``techne_sink_erasures_total{partner,outcome}``: erasure commands, ``erased`` / ``already_done``;
- ``techne_sink_erasure_seconds{partner}``: histogram from the command's ``issued_at`` to done;
- ``techne_sink_erased_rows_total{partner,table}``: rows deleted by erasure commands.

:func:`declare_sink` creates a sink's labelled counters at 0 when it starts (see core/metrics.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from core.metrics import DEAD_LETTERS, DLQ_REASONS, SINK

AUDIT_LABEL = "_audit"

ROWS_INSERTED = Counter("techne_sink_rows_inserted_total", "Rows inserted by the sinks", ["partner", "table"],
                        registry=SINK)
BATCHES = Counter("techne_sink_batches_total", "Batches written and committed", ["partner", "table"], registry=SINK)
BATCH_MESSAGES = Histogram(
    "techne_sink_batch_messages",
    "Messages per flushed batch",
    ["partner", "table"],
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000),
    registry=SINK,
)
INSERT_SECONDS = Histogram(
    "techne_sink_insert_seconds",
    "Duration of one idempotent batch write (checks + insert)",
    ["partner", "table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=SINK,
)
INSERT_ERRORS = Counter(
    "techne_sink_insert_errors_total", "Failed batch write attempts (retried)", ["partner", "table"], registry=SINK
)
RETRIES = Counter("techne_sink_retries_total", "Batch write attempts made after a failure", ["partner"], registry=SINK)
PAUSED = Gauge("techne_sink_paused", "1 while consumption is paused because the store fails", ["partner"],
               registry=SINK)
LAG = Gauge(
    "techne_sink_lag_messages",
    "High-water mark minus the first offset not yet committed",
    ["partner", "topic", "partition"],
    registry=SINK,
)
DUPLICATES_SKIPPED = Counter(
    "techne_sink_duplicates_skipped_total", "Rows not inserted because they were already stored", ["partner", "table"],
    registry=SINK,
)
SUPPRESSED = Counter(
    "techne_sink_suppressed_total", "Rows withheld on purpose (erased, expired)", ["partner", "reason"], registry=SINK
)
UNDECODABLE = Counter(
    "techne_sink_undecodable_total", "Messages that could not become rows", ["partner", "table"], registry=SINK
)
ERASURES = Counter("techne_sink_erasures_total", "Erasure commands by outcome", ["partner", "outcome"], registry=SINK)
ERASURE_SECONDS = Histogram(
    "techne_sink_erasure_seconds",
    "From the erasure command's issued_at to its execution",
    ["partner"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=SINK,
)
E2E_LATENCY = Histogram(
    "techne_sink_e2e_latency_seconds",
    "From the gateway receiving an event (received_at) to its row being inserted in the partner's store",
    ["partner"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=SINK,
)
ERASED_ROWS = Counter("techne_sink_erased_rows_total", "Rows deleted by erasure commands", ["partner", "table"],
                      registry=SINK)


ERASURE_OUTCOMES = ("erased", "already_done")
SUPPRESSION_REASONS = ("erased", "expired")


def declare_sink(owner: str, tables: Iterable[str]) -> None:
    """Create the labelled counters of sink ``owner`` (a partner id, or ``AUDIT_LABEL``) at 0 for
    its ``tables``: undecodable messages, insert errors, rows, duplicates, erasures, suppressed
    rows and its dead letters by reason, so that the first of each shows as an increase."""
    for table in tables:
        for counter in (UNDECODABLE, INSERT_ERRORS, ROWS_INSERTED, BATCHES, DUPLICATES_SKIPPED, ERASED_ROWS):
            counter.labels(owner, table)
    for outcome in ERASURE_OUTCOMES:
        ERASURES.labels(owner, outcome)
    for reason in SUPPRESSION_REASONS:
        SUPPRESSED.labels(owner, reason)
    RETRIES.labels(owner)
    for reason in DLQ_REASONS["sink"]:
        DEAD_LETTERS.labels(stage="sink", reason=reason)


def observe_many(histogram: Any, amounts: Sequence[float]) -> None:
    """``histogram.observe(a) for a in amounts`` (a labelled child, no exemplars), counted per bucket
    in one pass: one lock per bucket instead of two per observation. Falls back to ``observe``
    if the client library's histogram is not laid out as expected."""
    bounds, buckets, total = (getattr(histogram, name, None) for name in ("_upper_bounds", "_buckets", "_sum"))
    if not amounts:
        return
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for amount in amounts:
            histogram.observe(amount)
        return
    values = np.asarray(amounts, dtype=np.float64)
    # observe() counts an amount in the first bucket whose upper bound is >= it
    counts = np.bincount(np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left"),
                         minlength=len(bounds))
    total.inc(float(values.sum()))
    for bucket, count in zip(buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
