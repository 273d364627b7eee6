"""``partner.<id>.ticketing`` -> the partner's ``ticket_orders`` table (a sink-loop handler).

:meth:`OrdersHandler.decode` is pure (:meth:`sinks.framing.SharedFormat.parse`).
:meth:`OrdersHandler.write` writes one batch, idempotently:

1. rows already past their retention (``retain_until <= today``, e.g. a very old redelivery)
   are withheld; so are rows an erasure tombstone covers (:mod:`sinks.erasure`);
2. rows whose ``event_id`` is already stored, or repeated in the batch, are dropped. The check
   is exact (each partner store has exactly one writer) and restricted to the batch's
   ``occurred_at`` range: every copy of an event carries the same event time;
3. the rest is inserted as Avro (decoded by the engine), one insert per writer-schema version,
   each with ``insert_deduplication_token = <topic>-<partition>-<min>-<max>-s<schema>-<digest of
   the ids>``: a retry whose first attempt landed is dropped by the engine, a retry after a
   partial landing inserts exactly the remainder;
4. if the engine refuses an insert, every row of it is decoded in Python: rows that fail are
   reported as :class:`~sinks.base.Rejected` (the loop hands them to the invalid-message hook
   before committing) and the others are inserted; if none fails, the store is at fault and
   :class:`~techne.errors.StoreUnavailable` propagates (the loop retries the whole batch).

Guarantee (with the loop's commit-after-write): every valid message of the partner topic ends
up as exactly one row with its ``event_id`` in ``ticket_orders`` (``count() ==
uniqExact(event_id)`` without ``FINAL``), unless it was erased or is past retention, whatever
the crashes or store outages, provided the store has a single writer. A chDB directory
guarantees it (exclusive lock); on a server, run one sink per partner (during a consumer-group
rebalance two instances may overlap briefly: a duplicate can then be stored and collapses at
the next merge of the ``ReplacingMergeTree``, or at once with ``FINAL``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date

from sinks import metrics
from sinks.base import Batch, Rejected, Store, WriteResult, first_occurrences, insert_token
from sinks.ddl import Column, row_from_record
from sinks.erasure import Tombstones
from sinks.faults import NO_FAULTS, Faults, kill
from sinks.framing import SharedFormat, SharedRow
from sinks.tables import RETAIN_UNTIL, PartnerTables, today
from techne.errors import InvalidMessage, StoreUnavailable

log = logging.getLogger(__name__)
_ID_CHUNK = 10_000


class OrdersHandler:
    """Shared ticket orders of one partner (see module doc)."""

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
        faults: Faults = NO_FAULTS,
        clock_today: Callable[[], date] = today,
    ) -> None:
        self.store, self.tables, self.tombstones = store, tables, tombstones
        self.topic, self.batch_rows, self.batch_seconds = topic, batch_rows, batch_seconds
        self.table = tables.orders.name
        self.shared = shared or SharedFormat()
        self.faults, self._today = faults, clock_today
        self._avro_columns = tuple(c for c in tables.orders.columns if c.name != RETAIN_UNTIL)
        self._known = dict(tables.retention.days)
        self._warned: set[str] = set()

    def decode(self, value: bytes | None) -> SharedRow:
        return self.shared.parse(value)

    async def write(self, batch: Batch[SharedRow]) -> WriteResult:
        return await asyncio.to_thread(self.write_sync, batch)

    def write_sync(self, batch: Batch[SharedRow]) -> WriteResult:
        rows = batch.items
        if not rows:
            return WriteResult()
        self.faults.hit("before_insert")
        retained = self._retained(rows)
        live = self.tombstones.filter(retained) if retained else retained
        partner = self.tables.partner
        metrics.SUPPRESSED.labels(partner, "expired").inc(len(rows) - len(retained))
        metrics.SUPPRESSED.labels(partner, "erased").inc(len(retained) - len(live))
        existing = self._existing(live)
        kept = [live[i] for i in first_occurrences((r.event_id for r in live), existing)]
        rejected = self._insert(batch.token(), kept, batch)
        inserted = len(kept) - len(rejected)
        return WriteResult(inserted, len(live) - len(kept), len(rows) - len(live), tuple(rejected))

    def _retained(self, rows: Sequence[SharedRow]) -> list[SharedRow]:
        retention, now = self.tables.retention, self._today()
        for agreement in {r.agreement_id for r in rows} - self._known.keys():
            metrics.UNKNOWN_AGREEMENT.labels(self.tables.partner).inc()
            if agreement not in self._warned:
                self._warned.add(agreement)
                log.warning("partner %s: rows under unknown agreement %r get the shortest retention (%d days)",
                            self.tables.partner, agreement, retention.default_days)
        cutoffs, default = retention.cutoffs(now)
        if min(r.occurred_at_us for r in rows) >= max(default, *cutoffs.values()):
            return list(rows)  # the usual case: nothing near the end of its retention
        return [r for r in rows if r.occurred_at_us >= cutoffs.get(r.agreement_id, default)]

    def _existing(self, rows: Sequence[SharedRow]) -> set[str]:
        if not rows:
            return set()
        lo = min(r.occurred_at_us for r in rows)
        hi = max(r.occurred_at_us for r in rows)
        sql = (
            f"SELECT toString(event_id) FROM {self.tables.orders.qualified} "  # noqa: S608
            "WHERE occurred_at BETWEEN fromUnixTimestamp64Micro({lo:Int64}, 'UTC') "
            "AND fromUnixTimestamp64Micro({hi:Int64}, 'UTC') AND event_id IN {ids:Array(UUID)}"
        )
        ids = sorted({r.event_id for r in rows})
        found: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            params = {"lo": lo, "hi": hi, "ids": ids[start : start + _ID_CHUNK]}
            found.update(str(r[0]) for r in self.store.query(sql, params))
        return found

    def _insert(self, batch_token: str, rows: Sequence[SharedRow], batch: Batch[SharedRow]) -> list[Rejected]:
        groups: dict[int, list[SharedRow]] = {}
        for row in rows:
            groups.setdefault(row.schema_id, []).append(row)
        rejected: list[Rejected] = []
        for schema_id, group in sorted(groups.items()):
            token = f"{batch_token}-s{schema_id}"
            if self.faults.reached("during_insert"):
                self._insert_group(token, schema_id, group[: len(group) // 2])
                kill()
            try:
                self._insert_group(token, schema_id, group)
            except StoreUnavailable:
                bad = self._validate(group, batch)
                if not bad:
                    raise
                offsets = {b.offset for b in bad}
                positions = dict(zip(map(id, batch.items), batch.offsets, strict=True))
                good = [r for r in group if positions[id(r)] not in offsets]
                log.warning("partner %s: %d rows refused by the engine set aside", self.tables.partner, len(bad))
                self._insert_group(token, schema_id, good)
                rejected.extend(bad)
        return rejected

    def _insert_group(self, token: str, schema_id: int, rows: Sequence[SharedRow]) -> None:
        if not rows:
            return
        fields = self.shared.fields(schema_id)
        columns = [c.name for c in self._avro_columns if c.name in fields]
        data = self.shared.container(schema_id, rows)
        self.store.insert(
            self.tables.orders.qualified, columns, data, "Avro", insert_token(token, (r.event_id for r in rows))
        )

    def _validate(self, rows: Sequence[SharedRow], batch: Batch[SharedRow]) -> list[Rejected]:
        """Full Python decode of each row: those the engine cannot store faithfully."""
        positions = dict(zip(map(id, batch.items), batch.offsets, strict=True))
        bad: list[Rejected] = []
        for row in rows:
            try:
                _, record = self.shared.catalogue.decode(row.value)
                row_from_record(record, columns_of(self._avro_columns, record))
            except InvalidMessage as exc:
                bad.append(Rejected(positions[id(row)], exc, row.value))
        return bad


def columns_of(columns: Sequence[Column], record: dict[str, object]) -> list[Column]:
    """The columns a decoded record provides (a record of an older version lacks later fields)."""
    return [c for c in columns if c.name in record]

