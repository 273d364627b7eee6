"""Erasure commands (``partner.<id>.erasure``) executed on the partner's store.

A command names a subject pseudonym, a venue, purposes (empty: all) and the event time of the
withdrawal/request. Executing it (:class:`EraseHandler`, the commands of a poll together, under
the sink's write lock so no batch insert interleaves):

1. in every table of the partner holding ``subject_pseudonym, venue_id, occurred_at, purpose``:
   count, then lightweight ``DELETE`` the rows of that subject and venue (and purposes) with
   ``occurred_at <=`` the command's ``occurred_at``;
2. publish an ``erased`` record on ``techne.audit`` (the same JSON shape as the worker's
   decisions, plus ``rows_deleted``, ``issued_at``, ``command_occurred_at``), awaited;
3. insert a tombstone in ``erasures``; only then is the command's offset committed.

Idempotent: a command whose tombstone exists is ``already_done`` (the ``DELETE`` is re-run if
matching rows are found, no second audit record). A crash between 1 and 3 re-executes the
command on redelivery (its audit record may then appear twice, with the same ``event_id`` =
``command_id``). Tombstones also guard the other direction: the erasure and ticketing topics
are not ordered relative to each other, so a shared event arriving *after* its erasure with
``occurred_at <=`` the command's is withheld (:func:`suppressed`) instead of inserted.

Physical removal: a lightweight ``DELETE`` masks the rows at once (no query sees them from
the moment the command is committed); their bytes stay in the data parts until those are
merged, which ClickHouse does in the background with no time bound. To remove them now:
``ALTER TABLE <db>.<table> APPLY DELETED MASK`` (rewrites the parts holding masked rows) or
``OPTIMIZE TABLE <db>.<table> FINAL``, for every table of shared events. Copies
outside the store (the Kafka topic until its retention, the partner's own downstream copies)
are erased by whoever holds them: partners consume the same erasure topic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import InvalidMessage
from schemas.codec import CATALOGUE, Catalogue
from schemas.models import ERASURE_COMMAND
from sinks import metrics
from sinks.base import Batch, Params, Store, WriteResult, insert_token
from sinks.ddl import quote, to_json_each_row
from sinks.framing import Details, SharedFormat, SharedRow
from sinks.tables import PartnerTables

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 5_000
Publish = Callable[[bytes, bytes], Awaitable[None]]
"""Produce ``(key, value)`` to ``techne.audit`` and wait for the acknowledgement."""


@dataclass(frozen=True)
class ErasureCommand:
    command_id: str
    partner: str
    venue_id: str
    subject_pseudonym: str
    purposes: tuple[str, ...]
    reason: str
    occurred_at_us: int
    issued_at_us: int


def micros(ts: datetime) -> int:
    return (ts.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def ch_time(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_command(value: bytes | None, partner: str, catalogue: Catalogue = CATALOGUE) -> ErasureCommand:
    """Pure: a framed ``ErasureCommand`` for ``partner``, or :class:`InvalidMessage`; schema ids
    are ``catalogue``'s (an external registry's when one is configured)."""
    if value is None:
        raise InvalidMessage("decode", "tombstone", "message has no value")
    name, r = catalogue.decode(value)
    if name != ERASURE_COMMAND:
        raise InvalidMessage("decode", "unexpected_schema", name)
    if r["partner"] != partner:
        raise InvalidMessage("erase", "wrong_partner", f"command for {r['partner']!r} on {partner!r}'s topic")
    return ErasureCommand(
        str(uuid.UUID(str(r["command_id"]))),
        r["partner"],
        r["venue_id"],
        r["subject_pseudonym"],
        tuple(r["purposes"]),
        r["reason"],
        micros(r["occurred_at"]),
        micros(r["issued_at"]),
    )


def where(command: ErasureCommand, n: int | str = "") -> tuple[str, Params]:
    """The rows a command erases: ``(WHERE clause, parameters)``; parameter names end with
    ``n`` so that clauses of several commands combine (:func:`where_any`)."""
    clause = (
        f"subject_pseudonym = {{s{n}:String}} AND venue_id = {{v{n}:String}} "
        f"AND occurred_at <= fromUnixTimestamp64Micro({{t{n}:Int64}}, 'UTC')"
    )
    params: dict[str, Any] = {f"s{n}": command.subject_pseudonym, f"v{n}": command.venue_id,
                              f"t{n}": command.occurred_at_us}
    if command.purposes:
        clause += f" AND purpose IN {{p{n}:Array(String)}}"
        params[f"p{n}"] = list(command.purposes)
    return clause, params


def where_any(commands: Sequence[ErasureCommand], first: int = 0) -> tuple[str, Params]:
    """The rows any of ``commands`` erases: the ``OR`` of their clauses (parameters numbered
    from ``first``)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for i, command in enumerate(commands, start=first):
        clause, p = where(command, i)
        clauses.append(f"({clause})")
        params.update(p)
    return " OR ".join(clauses) or "0", params


Index = dict[tuple[str, str], list[tuple[frozenset[str], int]]]


def suppressed(occurred_at_us: int, details: Details, index: Index) -> bool:
    """Pure: true when a tombstone in ``index`` covers the row (same subject and venue, purpose
    among the command's or the command names none, ``occurred_at`` not after the command's)."""
    for purposes, until_us in index.get((details.subject_pseudonym, details.venue_id), ()):
        if occurred_at_us <= until_us and (not purposes or details.purpose in purposes):
            return True
    return False


class Tombstones:
    """Reads the ``erasures`` table; remembers whether it holds anything (the sink is its only
    writer), so batches skip the lookup until the first erasure."""

    def __init__(self, store: Store, tables: PartnerTables) -> None:
        self.store, self.spec = store, tables.erasures
        self.any: bool | None = None

    def existing(self, command_ids: Sequence[str]) -> set[str]:
        """Those of ``command_ids`` that have a tombstone (executed commands)."""
        if not command_ids:
            return set()
        sql = f"SELECT DISTINCT toString(command_id) FROM {self.spec.qualified} WHERE command_id IN {{c:Array(UUID)}}"  # noqa: S608
        return {str(c) for (c,) in self.store.query(sql, {"c": sorted(set(command_ids))})}

    def _any(self) -> bool:
        """Whether any tombstone is stored (asked once; kept up to date by the erase handler)."""
        if self.any is None:
            ((n,),) = self.store.query(f"SELECT count() FROM {self.spec.qualified}")  # noqa: S608
            self.any = int(n) > 0
        return self.any

    def index(self, pseudonyms: Iterable[str]) -> Index:
        out: Index = {}
        if not self._any():
            return out
        wanted = sorted(set(pseudonyms))
        sql = (
            "SELECT subject_pseudonym, venue_id, purposes, toUnixTimestamp64Micro(occurred_at) "  # noqa: S608
            f"FROM {self.spec.qualified} WHERE subject_pseudonym IN {{ps:Array(String)}}"
        )
        for start in range(0, len(wanted), _CHUNK):
            for subject, venue, purposes, until in self.store.query(sql, {"ps": wanted[start : start + _CHUNK]}):
                out.setdefault((subject, venue), []).append((frozenset(purposes), int(until)))
        return out

    def filter(self, rows: Sequence[SharedRow], shared: SharedFormat) -> list[SharedRow]:
        """``rows`` minus those a tombstone covers (nothing to read while there is no tombstone)."""
        if not rows or not self._any():
            return list(rows)
        details = [shared.details(r) for r in rows]
        index = self.index(d.subject_pseudonym for d in details if d is not None)
        if not index:
            return list(rows)
        return [r for r, d in zip(rows, details, strict=True)
                if d is None or not suppressed(r.occurred_at_us, d, index)]


def audit_value(command: ErasureCommand, rows_deleted: int, now_us: int) -> bytes:
    """The ``erased`` audit record (JSON, no identifiers beyond the partner's pseudonym space)."""
    return json.dumps(
        {
            "event_id": command.command_id,
            "venue_id": command.venue_id,
            "event_type": "erasure_command",
            "outcome": "erased",
            "reason": command.reason,
            "agreement_id": None,
            "partner": command.partner,
            "purpose": ",".join(command.purposes) or None,
            "decided_at": iso(now_us),
            "rows_deleted": rows_deleted,
            "issued_at": iso(command.issued_at_us),
            "command_occurred_at": iso(command.occurred_at_us),
        }
    ).encode()


class EraseHandler:
    """``partner.<id>.erasure`` -> executed commands (see module doc). A sink-loop handler."""

    table = "erasures"

    def __init__(
        self,
        store: Store,
        tables: PartnerTables,
        tombstones: Tombstones,
        publish: Publish,
        *,
        topic: str,
        batch_rows: int = 500,
        batch_seconds: float = 0.1,
        now_us: Callable[[], int] = lambda: micros(datetime.now(UTC)),
        catalogue: Catalogue = CATALOGUE,
    ) -> None:
        self.store, self.tables, self.tombstones, self.publish = store, tables, tombstones, publish
        self.topic, self.batch_rows, self.batch_seconds = topic, batch_rows, batch_seconds
        self.now_us, self.catalogue = now_us, catalogue

    def decode(self, value: bytes | None) -> ErasureCommand:
        return parse_command(value, self.tables.partner, self.catalogue)

    def tables_to_erase(self) -> list[str]:
        sql = (
            "SELECT table FROM system.columns WHERE database = {d:String} "
            "AND name IN ('subject_pseudonym', 'venue_id', 'occurred_at', 'purpose') "
            "AND table IN (SELECT name FROM system.tables WHERE database = {d:String} AND engine NOT LIKE '%View') "
            "GROUP BY table HAVING count() = 4"
        )
        return sorted(str(t) for (t,) in self.store.query(sql, {"d": self.tables.database}))

    def delete(self, commands: Sequence[ErasureCommand]) -> list[int]:
        """Count each command's rows in every table, then lightweight-delete them with one
        ``DELETE`` per table for all the commands (each ``DELETE`` is a mutation costing about
        half a second on chDB whatever it removes, so a burst of withdrawals must not pay it per
        command); returns the rows deleted per command. A row two commands cover counts for the
        first of them, as if they ran one after the other."""
        counts = [0] * len(commands)
        for table in self.tables_to_erase():
            qualified = f"{quote(self.tables.database)}.{quote(table)}"
            hit: list[ErasureCommand] = []
            in_table = 0
            for i, command in enumerate(commands):
                clause, params = where(command, i)
                earlier = [c for c in commands[:i] if (c.subject_pseudonym, c.venue_id)
                           == (command.subject_pseudonym, command.venue_id)]
                if earlier:
                    before, more = where_any(earlier, first=len(commands))
                    clause, params = f"({clause}) AND NOT ({before})", {**params, **more}
                ((n,),) = self.store.query(f"SELECT count() FROM {qualified} WHERE {clause}", params)  # noqa: S608
                if int(n):
                    counts[i] += int(n)
                    in_table += int(n)
                    hit.append(command)
            if hit:
                clause, params = where_any(hit)
                self.store.command(f"DELETE FROM {qualified} WHERE {clause}", params)  # noqa: S608
                metrics.ERASED_ROWS.labels(self.tables.partner, table).inc(in_table)
        return counts

    def record(self, executed: Sequence[tuple[ErasureCommand, int]], now_us: int) -> None:
        """Tombstones of the executed ``(command, rows deleted)``, in one insert."""
        rows: list[dict[str, Any]] = []
        for command, rows_deleted in executed:
            keep = (EPOCH + timedelta(microseconds=command.occurred_at_us)).date()
            rows.append({
                "command_id": command.command_id,
                "venue_id": command.venue_id,
                "subject_pseudonym": command.subject_pseudonym,
                "purposes": list(command.purposes),
                "reason": command.reason,
                "occurred_at": ch_time(command.occurred_at_us),
                "issued_at": ch_time(command.issued_at_us),
                "executed_at": ch_time(now_us),
                "rows_deleted": rows_deleted,
                "keep_until": (keep + timedelta(days=self.tables.retention.max_days + 1)).isoformat(),
            })
        spec = self.tables.erasures
        token = insert_token("erasure", sorted(c.command_id for c, _ in executed))
        self.store.insert(spec.qualified, spec.names, to_json_each_row(rows), "JSONEachRow", token)
        self.tombstones.any = True

    async def write(self, batches: Sequence[Batch[ErasureCommand]]) -> list[WriteResult]:
        """Every command of the batches, executed together (see :meth:`execute_many`)."""
        executed = await self.execute_many([c for batch in batches for c in batch.items])
        results, start = [], 0
        for batch in batches:
            done = executed[start : start + len(batch.items)]
            start += len(batch.items)
            results.append(WriteResult(inserted=sum(done), duplicates=len(done) - sum(done)))
        return results

    async def execute(self, command: ErasureCommand) -> int:
        """Execute one command; returns 1 if it was executed now, 0 if it already was."""
        return (await self.execute_many([command]))[0]

    async def execute_many(self, commands: Sequence[ErasureCommand]) -> list[int]:
        """Execute ``commands`` (steps 1-3 of the module doc, each step for all of them at
        once); per command, 1 if it was executed now, 0 if it already was (a tombstone exists,
        or it came earlier in ``commands``): those are deleted again if rows match, not
        audited twice."""
        if not commands:
            return []
        partner = self.tables.partner
        done = await asyncio.to_thread(self.tombstones.existing, [c.command_id for c in commands])
        deleted = await asyncio.to_thread(self.delete, commands)
        fresh: list[tuple[ErasureCommand, int]] = []
        outcome: list[int] = []
        for command, n in zip(commands, deleted, strict=True):
            if command.command_id in done:
                metrics.ERASURES.labels(partner, "already_done").inc()
                log.info("erasure %s already done (%d rows deleted again)", command.command_id, n)
                outcome.append(0)
            else:
                done.add(command.command_id)
                fresh.append((command, n))
                outcome.append(1)
        if not fresh:
            return outcome
        now_us = self.now_us()
        await asyncio.gather(*(self.publish(c.command_id.encode(), audit_value(c, n, now_us)) for c, n in fresh))
        await asyncio.to_thread(self.record, fresh, now_us)
        for command, n in fresh:
            metrics.ERASURES.labels(partner, "erased").inc()
            metrics.ERASURE_SECONDS.labels(partner).observe(max(0, self.now_us() - command.issued_at_us) / 1e6)
            log.info("erasure %s executed: %d rows deleted", command.command_id, n)
        return outcome
