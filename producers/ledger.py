"""Replay protection: the answers given to accepted ``webhook-id``s, kept for a time window.

A venue (or an attacker holding a captured request) may deliver the same signed webhook again.
:class:`WebhookLedger` remembers, per ``(source, webhook-id)``, the JSON answer given when it
was accepted, for ``ttl`` seconds (at least the 5-minute signature tolerance, by default one
day so that a sender's own retry schedule is covered). The gateway answers a known id with the
same answer (same ``event_id``s) and produces nothing.

Stored in SQLite (WAL, ``synchronous=NORMAL``), written behind: answers are grouped into one
transaction at most ``FLUSH_AFTER_S`` after they were given, and on close. A gateway killed
(or a power cut) in that window forgets those last ids; their re-delivery is then produced
again with the same derived ``event_id``, which the partner sinks keep once. Concurrent
deliveries of one id in the same process are serialized by the caller (see
:meth:`WebhookLedger.claim`).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted (
    source TEXT NOT NULL, webhook_id TEXT NOT NULL, answer TEXT NOT NULL, accepted_at REAL NOT NULL,
    PRIMARY KEY (source, webhook_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS accepted_at ON accepted (accepted_at);
"""
PRUNE_EVERY = 1000
FLUSH_EVERY = 500
FLUSH_AFTER_S = 0.05


class WebhookLedger:
    """Accepted webhook ids of every source (``venue`` or ``venue/vendor``) in ``path``."""

    def __init__(self, path: Path, ttl: float = 86_400.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._inserts = 0
        self._pending: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self.prune()

    def get(self, source: str, webhook_id: str) -> dict[str, Any] | None:
        """The answer given when ``webhook_id`` was accepted within the window, else None."""
        pending = self._pending.get((source, webhook_id))
        if pending is not None:
            return dict(pending[0])
        row = self._db.execute("SELECT answer, accepted_at FROM accepted WHERE source = ? AND webhook_id = ?",
                               (source, webhook_id)).fetchone()
        if row is None or row[1] < time.time() - self.ttl:
            return None
        answer: dict[str, Any] = json.loads(row[0])
        return answer

    def put(self, source: str, webhook_id: str, answer: dict[str, Any]) -> None:
        """Remember an answer; it is written within ``FLUSH_AFTER_S`` (one transaction for many)."""
        self._pending[(source, webhook_id)] = (answer, time.time())
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)
            except RuntimeError:  # no loop (tests, tools): write now
                self.flush()

    def flush(self) -> None:
        """Write the answers remembered since the last flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        rows = [(src, wid, json.dumps(ans, separators=(",", ":")), at)
                for (src, wid), (ans, at) in self._pending.items()]
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO accepted (source, webhook_id, answer, accepted_at)"
                             " VALUES (?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")
        self._pending.clear()
        self._inserts += len(rows)
        if self._inserts >= PRUNE_EVERY:
            self._inserts = 0
            self.prune()

    def prune(self) -> int:
        """Forget ids older than the window; return how many."""
        return self._db.execute("DELETE FROM accepted WHERE accepted_at < ?", (time.time() - self.ttl,)).rowcount

    @asynccontextmanager
    async def claim(self, source: str, webhook_id: str) -> AsyncIterator[dict[str, Any] | None]:
        """Serialize the handling of one id: yields its earlier answer (None if new)."""
        key = (source, webhook_id)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield self.get(source, webhook_id)
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def close(self) -> None:
        self.flush()
        self._db.close()
