"""The one store interface, the per-partition batch, and the idempotent write (pure logic).

A :class:`Store` is a partner's analytical database (embedded chDB or a ClickHouse server).
Every store method raises :class:`~techne.errors.StoreUnavailable` when the store cannot do its
job right now; callers retry the same batch later and commit nothing meanwhile.

Idempotence contract of :func:`write_batch`: writing the same rows twice (a retry, or a
redelivery after a crash between insert and offset commit) leaves each ``event_id`` in the table
once. It is layered:

1. rows whose ``event_id`` is already stored, or repeated inside the batch, are dropped
   (exact when a single writer owns the table, which the sink guarantees per partner);
2. the insert carries a deduplication token derived from the batch's offsets *and* the ids
   actually inserted, so the server drops a block it has already seen (a retry whose first
   attempt did land) but never a block with different content;
3. the table is a ``ReplacingMergeTree`` keyed on ``event_id``, so any duplicate that slipped
   through (e.g. two writers racing) collapses at merge time / with ``FINAL``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sinks.ddl import Row

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0


class Store(Protocol):
    """A partner's analytical store. Methods are blocking; call them off the event loop."""

    def ensure_schema(self) -> None:
        """Create the database and table if needed and add columns new in the schema."""

    def existing_event_ids(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` (canonical UUID strings) already stored."""

    def insert(self, rows: Sequence[Row], dedup_token: str) -> None:
        """Insert ``rows`` in one statement carrying ``dedup_token``; nothing if ``rows`` is empty."""

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a read query; values come back as JSON types (numbers, strings, null)."""

    def close(self) -> None:
        """Release the store (idempotent)."""


@dataclass
class Batch:
    """Messages of one topic-partition waiting to be written, in offset order.

    Every consumed offset is recorded, including messages that produced no row (invalid,
    sent to the DLQ hook), so that committing ``max_offset + 1`` moves past all of them.
    ``ready`` is true once ``max_messages`` messages are held or the first one is
    ``max_age_s`` old (``now`` comes from a monotonic clock).
    """

    topic: str
    partition: int
    max_messages: int
    max_age_s: float
    rows: list[Row] = field(default_factory=list)
    messages: int = 0
    min_offset: int = -1
    max_offset: int = -1
    started_at: float | None = None

    def add(self, offset: int, row: Row | None, now: float) -> None:
        """Record message ``offset`` and its row (``None``: the message yields no row)."""
        if self.messages and offset <= self.max_offset:
            raise ValueError(f"offset {offset} not after {self.max_offset} in {self.topic}[{self.partition}]")
        if not self.messages:
            self.min_offset, self.started_at = offset, now
        self.max_offset = offset
        self.messages += 1
        if row is not None:
            self.rows.append(row)

    def ready(self, now: float) -> bool:
        if not self.messages or self.started_at is None:
            return False
        return self.messages >= self.max_messages or now - self.started_at >= self.max_age_s

    def deadline(self) -> float | None:
        """Monotonic time at which the batch becomes ready by age (``None`` when empty)."""
        return None if self.started_at is None else self.started_at + self.max_age_s

    def token(self) -> str:
        """``{topic}-{partition}-{min_offset}-{max_offset}``: stable across retries of this batch."""
        return f"{self.topic}-{self.partition}-{self.min_offset}-{self.max_offset}"

    def __len__(self) -> int:
        return self.messages


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    duplicates: int


def new_rows(rows: Sequence[Row], existing: set[str]) -> list[Row]:
    """``rows`` minus those whose ``event_id`` is in ``existing`` or seen earlier in ``rows``."""
    seen = set(existing)
    kept: list[Row] = []
    for row in rows:
        event_id = str(row["event_id"])
        if event_id not in seen:
            seen.add(event_id)
            kept.append(row)
    return kept


def insert_token(batch_token: str, rows: Sequence[Row]) -> str:
    """Batch token plus a digest of the ids inserted: same content -> same token, else different.

    Needed because a failed attempt may have stored part of a batch: the retry then inserts
    only the remainder, which must not be mistaken for the already-stored block.
    """
    digest = hashlib.sha256("\n".join(str(r["event_id"]) for r in rows).encode()).hexdigest()[:16]
    return f"{batch_token}-{digest}"


def write_batch(store: Store, rows: Sequence[Row], batch_token: str) -> WriteResult:
    """Idempotently write ``rows`` (see the module docstring). Raises ``StoreUnavailable``."""
    if not rows:
        return WriteResult(0, 0)
    existing = store.existing_event_ids(sorted({str(r["event_id"]) for r in rows}))
    kept = new_rows(rows, existing)
    if kept:
        store.insert(kept, insert_token(batch_token, kept))
    return WriteResult(len(kept), len(rows) - len(kept))


class Backoff:
    """Capped exponential retry delays: ``start``, doubling, at most ``cap``; :meth:`reset` restarts."""

    def __init__(self, start: float = BACKOFF_START_S, cap: float = BACKOFF_MAX_S) -> None:
        self.start, self.cap, self._next = start, cap, start

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.start
