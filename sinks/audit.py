"""The audit sink: ``techne.audit`` (JSON decisions) -> ``audit.decisions`` in its own chDB store.

Each record of ``techne.audit`` (the worker's decisions, see ``streams.processor.audit_record``:
one record per input message, one JSON line per decision; and the sinks' ``erased`` records,
see :mod:`sinks.erasure`, one line each) becomes one row per line. Known keys are
columns (a missing or null text value is stored as ``''``); any other key is kept in
``details`` (a JSON object), so new record kinds are never lost. :func:`parse_lines` and
:func:`parse` are pure and raise :class:`InvalidMessage` for a line that is not a JSON object
with ``event_id``, ``outcome`` and an ISO-8601 ``decided_at`` (the whole record is then invalid).

The audit is a log: its identity is the Kafka position, not the event (one event has several
decisions, and the worker, at least once, may re-send one). Each row carries its position
``kafka_partition``/``kafka_offset``/``kafka_line`` (line within the message); a batch write
drops the offsets already stored, and the insert carries a deduplication token, so each audit
*message* is stored exactly once, as one row per line (a decision the worker re-sent is two
messages: reports count distinct ``(event_id, partner, outcome)``). Rows are kept without TTL:
the audit is the accountability record.

``ORDER BY (venue_id, partner, decided_at, kafka_partition, kafka_offset, kafka_line)``: a
venue's data protection officer reads what that venue shared, with whom, over a period; the key
ends with the full position, so the ``ReplacingMergeTree`` never merges two rows into one (a
store created before ``kafka_line`` existed gets the column and the longer key in one
``ALTER``, see :func:`sinks.ddl.add_missing_columns_sql`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidMessage
from sinks.base import Batch, Store, WriteResult, batches_token, first_occurrences, insert_token
from sinks.ddl import Column, Row, TableSpec, to_json_each_row

DATABASE = "audit"
TABLE = "decisions"
TEXT_KEYS = ("event_id", "venue_id", "event_type", "outcome", "reason", "agreement_id", "partner", "purpose")
_LOW = "LowCardinality(String)"
SPEC = TableSpec(
    DATABASE,
    TABLE,
    (
        Column("event_id", "String"),
        *(Column(k, _LOW) for k in TEXT_KEYS[1:]),
        Column("decided_at", "DateTime64(6, 'UTC')", "timestamp"),
        Column("rows_deleted", "Nullable(UInt64)"),
        Column("issued_at", "Nullable(DateTime64(6, 'UTC'))", "timestamp", nullable=True),
        Column("details", "String"),
        Column("kafka_partition", "UInt32"),
        Column("kafka_offset", "UInt64"),
        Column("kafka_line", "UInt16"),
    ),
    ("venue_id", "partner", "decided_at", "kafka_partition", "kafka_offset", "kafka_line"),
    partition_by="toYYYYMM(decided_at)",
    indexes=(
        "offset_minmax kafka_offset TYPE minmax GRANULARITY 1",
        "event_id_bloom event_id TYPE bloom_filter GRANULARITY 4",
    ),
)
_KNOWN = {*TEXT_KEYS, "decided_at", "rows_deleted", "issued_at"}


def _time(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise InvalidMessage("decode", "bad_timestamp", key)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMessage("decode", "bad_timestamp", key) from None
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    if not 1900 <= ts.year <= 2299:
        raise InvalidMessage("decode", "timestamp_out_of_range", key)
    return ts.strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_lines(value: bytes | None) -> list[Row]:
    """Pure: one audit message (NDJSON, one decision per line) -> its rows, in line order."""
    if value is None:
        raise InvalidMessage("decode", "tombstone", "message has no value")
    return [parse(line) for line in value.split(b"\n") if line.strip()] or [parse(value)]


def parse(value: bytes | None) -> Row:
    """Pure: one audit line -> row without its Kafka position (see module doc)."""
    if value is None:
        raise InvalidMessage("decode", "tombstone", "message has no value")
    try:
        record = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidMessage("decode", "not_json", "audit record is not JSON") from None
    if not isinstance(record, dict):
        raise InvalidMessage("decode", "not_an_object", "audit record is not a JSON object")
    for key in ("event_id", "outcome"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise InvalidMessage("decode", "missing_field", key)
    row: Row = {}
    for key in TEXT_KEYS:
        value_ = record.get(key)
        row[key] = "" if value_ is None else str(value_)
    row["decided_at"] = _time(record.get("decided_at"), "decided_at")
    deleted = record.get("rows_deleted")
    if deleted is not None and (not isinstance(deleted, int) or isinstance(deleted, bool) or deleted < 0):
        raise InvalidMessage("decode", "bad_value", "rows_deleted")
    row["rows_deleted"] = deleted
    row["issued_at"] = None if record.get("issued_at") is None else _time(record["issued_at"], "issued_at")
    extra = {k: v for k, v in record.items() if k not in _KNOWN}
    row["details"] = json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else ""
    return row


class AuditHandler:
    """``techne.audit`` -> ``audit.decisions`` (a sink-loop handler)."""

    table = TABLE

    def __init__(self, store: Store, *, topic: str, batch_rows: int, batch_seconds: float) -> None:
        self.store, self.topic = store, topic
        self.batch_rows, self.batch_seconds = batch_rows, batch_seconds

    def decode(self, value: bytes | None) -> list[Row]:
        return parse_lines(value)

    async def write(self, batches: Sequence[Batch[list[Row]]]) -> list[WriteResult]:
        return await asyncio.to_thread(self.write_sync, batches)

    def write_sync(self, batches: Sequence[Batch[list[Row]]]) -> list[WriteResult]:
        """The batches' new rows in one insert; the offsets already stored are dropped."""
        sql = (
            f"SELECT kafka_offset FROM {SPEC.qualified} WHERE kafka_partition = {{p:UInt32}} "  # noqa: S608
            "AND kafka_offset BETWEEN {lo:UInt64} AND {hi:UInt64}"
        )
        rows: list[Row] = []
        results = []
        for batch in batches:
            if not batch.items:
                results.append(WriteResult())
                continue
            params = {"p": batch.partition, "lo": batch.offsets[0], "hi": batch.offsets[-1]}
            stored = {str(o) for (o,) in self.store.query(sql, params)}
            keep = first_occurrences((str(o) for o in batch.offsets), stored)
            rows += [{**row, "kafka_partition": batch.partition, "kafka_offset": batch.offsets[i], "kafka_line": n}
                     for i in keep for n, row in enumerate(batch.items[i])]
            kept = sum(len(batch.items[i]) for i in keep)
            results.append(WriteResult(inserted=kept, duplicates=sum(map(len, batch.items)) - kept))
        if rows:
            keys = (f"{r['kafka_partition']}:{r['kafka_offset']}:{r['kafka_line']}" for r in rows)
            token = insert_token(batches_token(batches), keys)
            self.store.insert(SPEC.qualified, SPEC.names, to_json_each_row(rows), "JSONEachRow", token)
        return results
