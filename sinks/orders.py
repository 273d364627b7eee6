"""A topic of shared events -> its table (a sink-loop handler): ``partner.<id>.ticketing`` ->
``ticket_orders``, ``partner.<id>.campaign`` -> ``email_clicks``, and so on for every kind
(:func:`shared_handlers`; ``venue.<venue>.*`` for a venue's own store), by the same code: all
are shared records with the same leading fields, and their tables the same sort key, retention
and erasure (:mod:`sinks.tables`).

:meth:`OrdersHandler.decode` and ``decode_many`` are pure (:meth:`sinks.framing.SharedFormat.parse`,
``parse_many``).
:meth:`OrdersHandler.write` writes the batches of several partitions together, idempotently:

1. rows already past their retention (``retain_until <= today``, e.g. a very old redelivery)
   are withheld; so are rows an erasure tombstone covers (:mod:`sinks.erasure`);
2. rows whose ``event_id`` is already stored, or repeated in the batch, are dropped. The check
   is exact (each partner store has exactly one writer): from memory for events newer than
   the store's content when the process started (:mod:`sinks.recent`), else by a query
   restricted to the rows' ``occurred_at`` range (every copy of an event carries the same
   event time);
3. the rest is inserted as Avro (decoded by the engine), one insert per writer-schema version,
   each with ``insert_deduplication_token = <topic>-<partition>-<min>-<max>[+<partition>-...]
   -s<schema>-<digest of the ids>``: a retry whose first attempt landed is dropped by the
   engine, a retry after a partial landing inserts exactly the remainder;
4. if the engine refuses an insert, every row of it is decoded in Python: rows that fail are
   reported as :class:`~sinks.base.Rejected` (the loop hands them to the invalid-message hook
   before committing) and the others are inserted; if none fails, the store is at fault and
   :class:`~core.errors.StoreUnavailable` propagates (the loop retries the whole batch).

Guarantee (with the loop's commit-after-write): every valid message of the partner topic ends
up as exactly one row with its ``event_id`` in its table (``count() ==
uniqExact(event_id)`` without ``FINAL``), unless it was erased or is past retention, whatever
the crashes or store outages, provided the store has a single writer. A chDB directory
guarantees it (exclusive lock); on a server, run one sink per partner (during a consumer-group
rebalance two instances may overlap briefly: a duplicate can then be stored and collapses at
the next merge of the ``ReplacingMergeTree``, or at once with ``FINAL``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import date

from core.errors import InvalidMessage, StoreUnavailable
from schemas.codec import CATALOGUE
from sinks import metrics
from sinks.base import Batch, Rejected, Store, WriteResult, batches_token, first_occurrences, insert_token
from sinks.ddl import Column, TableSpec, row_from_record
from sinks.erasure import Tombstones
from sinks.framing import SharedFormat, SharedRow
from sinks.recent import RecentIds
from sinks.tables import RETAIN_UNTIL, PartnerTables, today

log = logging.getLogger(__name__)
_ID_CHUNK = 10_000


class OrdersHandler:
    """Shared records of one partner into one table: ticket orders by default (see module doc)."""

    def __init__(
        self,
        store: Store,
        tables: PartnerTables,
        tombstones: Tombstones,
        *,
        topic: str,
        batch_rows: int,
        batch_seconds: float,
        shared: SharedFormat | None = None,
        clock_today: Callable[[], date] = today,
        spec: TableSpec | None = None,
    ) -> None:
        self.store, self.tables, self.tombstones = store, tables, tombstones
        self.topic, self.batch_rows, self.batch_seconds = topic, batch_rows, batch_seconds
        self.spec = spec or tables.orders  # the table written (``shared`` must be its schema's format)
        self.table = self.spec.name
        self.shared = shared or SharedFormat()
        self._today = clock_today
        self._avro_columns = tuple(c for c in self.spec.columns if c.name != RETAIN_UNTIL)
        self.recent = RecentIds()

    def decode(self, value: bytes | None) -> SharedRow:
        return self.shared.parse(value)

    def decode_many(self, values: Sequence[bytes | None]) -> list[SharedRow]:
        return self.shared.parse_many(values)

    async def write(self, batches: Sequence[Batch[SharedRow]]) -> list[WriteResult]:
        return await asyncio.to_thread(self.write_sync, batches)

    def write_sync(self, batches: Sequence[Batch[SharedRow]]) -> list[WriteResult]:
        """Write ``batches`` (distinct partitions of the topic) in one insert per schema version."""
        if not any(b.items for b in batches):
            return [WriteResult() for _ in batches]
        partner = self.tables.partner
        retained = [self._retained(b.items) if b.items else [] for b in batches]
        everything = [r for rows in retained for r in rows]
        unerased = self.tombstones.filter(everything, self.shared)
        if len(unerased) == len(everything):  # the usual case: no tombstone covers any row
            live = retained
        else:
            live_ids = {id(r) for r in unerased}
            live = [[r for r in rows if id(r) in live_ids] for rows in retained]
        expired = sum(len(b.items) - len(r) for b, r in zip(batches, retained, strict=True))
        metrics.SUPPRESSED.labels(partner, "expired").inc(expired)
        metrics.SUPPRESSED.labels(partner, "erased").inc(len(everything) - len(unerased))
        seen = self._stored([r for rows in live for r in rows])
        kept: list[list[SharedRow]] = []
        for rows in live:
            ids = [r.event_id for r in rows]
            if seen.isdisjoint(ids) and len(set(ids)) == len(ids):  # the usual case: all new, all distinct
                kept.append(rows)
            else:
                kept.append([rows[i] for i in first_occurrences(ids, seen)])
                ids = [r.event_id for r in kept[-1]]
            seen.update(ids)
        try:
            rejected = self._insert(batches, [r for rows in kept for r in rows])
        except BaseException:
            self.recent.invalidate()  # part of it may have landed: ask the store again next time
            raise
        refused = {(x.partition, x.offset) for x in rejected}
        now_us = time.time_ns() // 1000
        metrics.observe_many(metrics.E2E_LATENCY.labels(partner), [
            max(0, now_us - r.received_at_us) / 1e6 for rows in kept for r in rows if r.received_at_us])
        if refused:
            self.recent.add((r.event_id, r.occurred_at_us) for b, rows in zip(batches, kept, strict=True)
                            for r in rows if (b.partition, self._offset(b, r)) not in refused)
        else:
            self.recent.add((r.event_id, r.occurred_at_us) for rows in kept for r in rows)
        results = []
        for batch, rows, live_rows in zip(batches, kept, live, strict=True):
            bad = [x for x in rejected if x.partition == batch.partition]
            results.append(WriteResult(len(rows) - len(bad), len(live_rows) - len(rows),
                                       len(batch.items) - len(live_rows), tuple(bad)))
        return results

    @staticmethod
    def _offset(batch: Batch[SharedRow], row: SharedRow) -> int:
        return next(o for r, o in zip(batch.items, batch.offsets, strict=True) if r is row)

    def _retained(self, rows: Sequence[SharedRow]) -> list[SharedRow]:
        """``rows`` minus those past their agreement's retention (an unknown agreement: the shortest)."""
        cutoffs, default = self.tables.retention.cutoffs(self._today())
        safe = max(default, *cutoffs.values())
        if min(r.occurred_at_us for r in rows) >= safe:
            return list(rows)  # the usual case: nothing near the end of any retention
        kept = []
        for row in rows:
            details = self.shared.details(row) if row.occurred_at_us < safe else None
            if details is None or row.occurred_at_us >= cutoffs.get(details.agreement_id, default):
                kept.append(row)
        return kept

    def _stored(self, rows: Sequence[SharedRow]) -> set[str]:
        """Event ids of ``rows`` already in the table (see module doc, step 2)."""
        if self.recent.floor is None:
            sql = f"SELECT toUnixTimestamp64Micro(max(occurred_at)) FROM {self.spec.qualified}"  # noqa: S608
            ((watermark,),) = self.store.query(sql)
            self.recent.reset(int(watermark))
        answers = self.recent.lookup((r.event_id, r.occurred_at_us) for r in rows)
        found = {r.event_id for r, a in zip(rows, answers, strict=True) if a}
        unknown = [r for r, a in zip(rows, answers, strict=True) if a is None]
        return found | self._existing(unknown)

    def _existing(self, rows: Sequence[SharedRow]) -> set[str]:
        if not rows:
            return set()
        lo = min(r.occurred_at_us for r in rows)
        hi = max(r.occurred_at_us for r in rows)
        sql = (
            f"SELECT toString(event_id) FROM {self.spec.qualified} "  # noqa: S608
            "WHERE occurred_at BETWEEN fromUnixTimestamp64Micro({lo:Int64}, 'UTC') "
            "AND fromUnixTimestamp64Micro({hi:Int64}, 'UTC') AND event_id IN {ids:Array(UUID)}"
        )
        ids = list({r.event_id for r in rows})
        found: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            params = {"lo": lo, "hi": hi, "ids": ids[start : start + _ID_CHUNK]}
            found.update(str(r[0]) for r in self.store.query(sql, params))
        return found

    def _insert(self, batches: Sequence[Batch[SharedRow]], rows: Sequence[SharedRow]) -> list[Rejected]:
        groups: dict[int, list[SharedRow]] = {}
        for row in rows:
            groups.setdefault(row.schema_id, []).append(row)
        rejected: list[Rejected] = []
        for schema_id, group in sorted(groups.items()):
            token = f"{batches_token(batches)}-s{schema_id}"
            try:
                self._insert_group(token, schema_id, group)
            except StoreUnavailable:
                bad = self._validate(group, batches)
                if not bad:
                    raise
                refused = {id(row) for row, _ in bad}
                log.warning("partner %s: %d rows refused by the engine set aside", self.tables.partner, len(bad))
                self._insert_group(token, schema_id, [r for r in group if id(r) not in refused])
                rejected.extend(reason for _, reason in bad)
        return rejected

    def _insert_group(self, token: str, schema_id: int, rows: Sequence[SharedRow]) -> None:
        if not rows:
            return
        fields = self.shared.fields(schema_id)
        columns = [c.name for c in self._avro_columns if c.name in fields]
        data = self.shared.container(schema_id, rows)
        self.store.insert(
            self.spec.qualified, columns, data, "Avro", insert_token(token, (r.event_id for r in rows))
        )

    def _validate(
        self, rows: Sequence[SharedRow], batches: Sequence[Batch[SharedRow]]
    ) -> list[tuple[SharedRow, Rejected]]:
        """Full Python decode of each row: those the engine cannot store faithfully."""
        where = {id(r): (b.partition, o) for b in batches for r, o in zip(b.items, b.offsets, strict=True)}
        bad: list[tuple[SharedRow, Rejected]] = []
        for row in rows:
            try:
                _, record = self.shared.catalogue.decode(row.value)
                row_from_record(record, columns_of(self._avro_columns, record))
            except InvalidMessage as exc:
                partition, offset = where[id(row)]
                bad.append((row, Rejected(partition, offset, exc, row.value)))
        return bad

def columns_of(columns: Sequence[Column], record: dict[str, object]) -> list[Column]:
    """The columns a decoded record provides (a record of an older version lacks later fields)."""
    return [c for c in columns if c.name in record]


def shared_handlers(
    store: Store,
    tables: PartnerTables,
    tombstones: Tombstones,
    *,
    batch_rows: int,
    batch_seconds: float,
    shared: SharedFormat | None = None,
) -> list[OrdersHandler]:
    """One handler per table of shared events (:attr:`PartnerTables.streams`: topic -> table),
    ``ticket_orders`` first. ``shared``: the orders' format,
    whose catalogue (e.g. an external registry's ids) the other tables' formats reuse."""
    catalogue = shared.catalogue if shared is not None else CATALOGUE
    handlers = []
    for i, (topic, schema, spec) in enumerate(tables.streams):
        fmt = (shared or SharedFormat(catalogue, schema)) if i == 0 else SharedFormat(catalogue, schema)
        handlers.append(OrdersHandler(store, tables, tombstones, topic=topic, batch_rows=batch_rows,
                                      batch_seconds=batch_seconds, shared=fmt,
                                      spec=spec))
    return handlers
