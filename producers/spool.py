"""Durable local spool: records accepted while Kafka is unreachable or slow, in order.

One SQLite database in WAL mode with ``synchronous=FULL``: :meth:`Spool.append` returns only
once its transaction is fsynced, so an event answered 202 from the spool survives a crash of
the gateway (or of the machine). Entries keep their acceptance order (``seq``) and leave the
spool only once Kafka acknowledged them (:meth:`Spool.delete`).

Exactly once on the raw topic. An entry whose write to Kafka may have happened without us
seeing the acknowledgement (a send past its deadline, a replay batch cut by a crash) is
*in flight*. Before such entries are sent again, the replayer reads the raw topics from the
*watermarks* (per partition: the offset after the last write this spool knew was acknowledged
when the entry was marked) to their end and drops the entries whose ``event_id`` header is
already there. Watermarks are stored in the same transaction as the mark, so they hold across
restarts.

Purged once delivered. Entries hold sealed events (identifiers encrypted, producers/keyring.py)
and, while not yet known durable, the key-topic records of their data keys (wrapped by the master
key; replayed before the event). A delivered entry is
deleted with ``secure_delete`` (its bytes overwritten in the database file), and when the spool
becomes empty the write-ahead log is checkpointed and truncated, so nothing delivered lingers in
the spool's files.

Capacity is ``max_events`` entries; :meth:`Spool.reserve` / :meth:`Spool.release` let a caller
hold room for a request before writing anything, so a request is either wholly accepted or
wholly refused (:class:`SpoolFull`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import SpoolFull as SpoolFull  # defined with the whole tree
from core.topics import KEYS
from producers.ingest import Prepared

Watermarks = dict[tuple[str, int], int]
"""(topic, partition) -> first offset not known to be acknowledged by this spool's writes."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    event_id TEXT NOT NULL, event_type TEXT NOT NULL, venue TEXT NOT NULL, auth TEXT NOT NULL,
    spooled_at REAL NOT NULL, in_flight INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS watermarks (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition));
"""



@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    record: Prepared
    spooled_at: float
    in_flight: bool


class Spool:
    """The spool file ``path`` (created with its directory); one process at a time."""

    def __init__(self, path: Path, max_events: int = 1_000_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_events = max_events
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        if "keys" not in {row[1] for row in self._db.execute("PRAGMA table_info(spool)")}:
            self._db.execute("ALTER TABLE spool ADD COLUMN keys TEXT")  # spools written before sealing
        self._depth = int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])
        self._reserved = 0

    @property
    def depth(self) -> int:
        """Entries waiting for Kafka (in flight included)."""
        return self._depth

    def oldest_age(self) -> float:
        """Seconds since the oldest waiting entry was spooled (0 when empty)."""
        if self._depth == 0:
            return 0.0
        row = self._db.execute("SELECT min(spooled_at) FROM spool").fetchone()
        return max(0.0, time.time() - row[0]) if row and row[0] is not None else 0.0

    def reserve(self, n: int) -> None:
        """Hold room for ``n`` entries (raise :class:`SpoolFull` if there is none)."""
        if self._depth + self._reserved + n > self.max_events:
            raise SpoolFull(f"spool holds {self._depth} of {self.max_events} events")
        self._reserved += n

    def release(self, n: int) -> None:
        self._reserved = max(0, self._reserved - n)

    def append(self, records: Iterable[Prepared], *, in_flight: bool = False,
               watermarks: Mapping[tuple[str, int], int] | None = None) -> list[int]:
        """Write ``records`` (in order) in one fsynced transaction; return their sequence numbers.

        The caller reserved room for them first (:meth:`reserve`) and releases it afterwards."""
        rows = list(records)
        now = time.time()
        with self._tx():
            if watermarks:
                self._save_watermarks(watermarks)
            seqs = [int(self._db.execute(
                "INSERT INTO spool (topic, key, value, event_id, event_type, venue, auth, spooled_at, in_flight, keys)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                (r.topic, r.key, r.value, r.event_id, r.event_type, r.venue_id, r.auth, now, int(in_flight),
                 _dump_keys(r.keys)),
            ).fetchone()[0]) for r in rows]
        self._depth += len(rows)
        return seqs

    def head(self, n: int) -> list[Entry]:
        """The ``n`` oldest entries, in acceptance order."""
        cur = self._db.execute(
            "SELECT seq, topic, key, value, event_id, event_type, venue, auth, spooled_at, in_flight, keys"
            " FROM spool ORDER BY seq LIMIT ?", (n,))
        return [Entry(seq, Prepared(topic, key, value, event_id, event_type, venue, auth, _load_keys(keys, venue)),
                      at, bool(fl))
                for seq, topic, key, value, event_id, event_type, venue, auth, at, fl, keys in cur]

    def mark_in_flight(self, seqs: list[int], watermarks: Mapping[tuple[str, int], int]) -> None:
        """Record that ``seqs`` are about to be sent, with the watermarks to check them against."""
        with self._tx():
            self._save_watermarks(watermarks)
            self._db.executemany("UPDATE spool SET in_flight = 1 WHERE seq = ?", [(s,) for s in seqs])

    def delete(self, seqs: Iterable[int]) -> None:
        """Drop entries Kafka acknowledged (or that were found already on their topic)."""
        params = [(s,) for s in seqs]
        if not params:
            return
        with self._tx():
            before = self._db.total_changes
            self._db.executemany("DELETE FROM spool WHERE seq = ?", params)
            removed = self._db.total_changes - before
        self._depth -= removed
        if self._depth == 0 and removed:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def watermarks(self) -> Watermarks:
        return {(t, p): o for t, p, o in self._db.execute("SELECT topic, partition, next_offset FROM watermarks")}

    def _save_watermarks(self, watermarks: Mapping[tuple[str, int], int]) -> None:
        self._db.executemany(
            "INSERT INTO watermarks (topic, partition, next_offset) VALUES (?, ?, ?)"
            " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
            [(t, p, o) for (t, p), o in watermarks.items()])

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()


def _dump_keys(keys: tuple[Prepared, ...]) -> str | None:
    """The key-topic records an entry carries (its data key, not yet known durable), as JSON."""
    if not keys:
        return None
    return json.dumps([{"key": k.key.decode(), "value": k.value.decode(), "event_id": k.event_id} for k in keys])


def _load_keys(text: str | None, venue: str) -> tuple[Prepared, ...]:
    if not text:
        return ()
    return tuple(Prepared(KEYS, k["key"].encode(), k["value"].encode(), k["event_id"], "datakey", venue, "keyring")
                 for k in json.loads(text))


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
