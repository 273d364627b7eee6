"""Prometheus metrics of the partner sinks (default registry, one label: ``partner``).

- ``techne_sink_rows_inserted_total``: rows written to the partner table;
- ``techne_sink_batches_total``: batches flushed and committed;
- ``techne_sink_insert_seconds``: duration of one idempotent batch write (check + insert);
- ``techne_sink_insert_errors_total``: failed write attempts (each is retried, never dropped);
- ``techne_sink_duplicates_skipped_total``: rows not inserted because their event_id was stored;
- ``techne_sink_undecodable_total``: messages skipped (sent to the invalid-message hook).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ROWS_INSERTED = Counter("techne_sink_rows_inserted_total", "Rows inserted into partner tables", ["partner"])
BATCHES = Counter("techne_sink_batches_total", "Batches flushed and committed", ["partner"])
INSERT_SECONDS = Histogram(
    "techne_sink_insert_seconds",
    "Duration of one idempotent batch write (existing-id check + insert)",
    ["partner"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INSERT_ERRORS = Counter("techne_sink_insert_errors_total", "Failed batch write attempts (retried)", ["partner"])
DUPLICATES_SKIPPED = Counter(
    "techne_sink_duplicates_skipped_total", "Rows skipped because their event_id was already stored", ["partner"]
)
UNDECODABLE = Counter("techne_sink_undecodable_total", "Partner-topic messages that could not become rows", ["partner"])
