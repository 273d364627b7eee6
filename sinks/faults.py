"""Fault injection for the sink's crash and outage tests. TEST-ONLY: never set it in production.

``TECHNE_SINK_FAULT`` (read once, when the sink process starts) names one fault:

* ``before_insert:N`` — SIGKILL this process when the N-th non-empty ``ticket_orders`` batch
  is about to be written;
* ``during_insert:N`` — write the first half of the N-th batch's rows (one insert, as a
  multi-block insert that crashed half-way leaves it), then SIGKILL;
* ``after_insert:N`` — SIGKILL after the N-th batch is written, before its offsets are committed;
* ``after_erase:N`` — SIGKILL after the N-th erasure command deleted rows, before its tombstone,
  audit record and offset commit;
* ``store_down:N:S`` — from the N-th insert on, every store call fails with
  ``StoreUnavailable`` for S seconds (an outage under load; the store is wrapped in
  :class:`OutageStore`).

Without the variable, :data:`NO_FAULTS` is used and every hook is a no-op.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError, StoreUnavailable
from sinks.base import Params, Store

ENV = "TECHNE_SINK_FAULT"
FAULT_TABLE = "ticket_orders"
"""The table whose batches ``*_insert`` faults count."""
KILL_POINTS = ("before_insert", "during_insert", "after_insert", "after_erase")
log = logging.getLogger(__name__)


@dataclass
class Faults:
    """One armed fault (``point`` on the ``nth`` occurrence), or none (``point`` empty)."""

    point: str = ""
    nth: int = 0
    seconds: float = 0.0
    seen: Counter[str] = field(default_factory=Counter)

    def reached(self, point: str) -> bool:
        """Count an occurrence of ``point``; true on the armed one."""
        if point != self.point:
            return False
        self.seen[point] += 1
        return self.seen[point] == self.nth

    def hit(self, point: str) -> None:
        """SIGKILL this process if ``point`` is the armed kill point and its turn has come."""
        if point in KILL_POINTS and self.reached(point):
            kill(point)


NO_FAULTS = Faults()


def kill(detail: str = "") -> None:
    log.warning("fault injection: SIGKILL %s", detail)
    logging.shutdown()
    os.kill(os.getpid(), signal.SIGKILL)


def from_env(environ: dict[str, str] | None = None) -> Faults:
    """The fault named by ``TECHNE_SINK_FAULT`` (see module doc), or :data:`NO_FAULTS`."""
    spec = (environ if environ is not None else dict(os.environ)).get(ENV, "").strip()
    if not spec:
        return NO_FAULTS
    parts = spec.split(":")
    try:
        point, nth = parts[0], int(parts[1])
        seconds = float(parts[2]) if len(parts) > 2 else 0.0
    except (IndexError, ValueError):
        raise ConfigError(f"{ENV}={spec!r}: expected point:N[:seconds]") from None
    if point not in (*KILL_POINTS, "store_down") or nth < 1 or (point == "store_down") != (seconds > 0):
        raise ConfigError(f"{ENV}={spec!r}: unknown point, N < 1, or seconds missing/extra")
    log.warning("TEST-ONLY fault injection armed: %s", spec)
    return Faults(point, nth, seconds)


class OutageStore:
    """A store wrapper failing every call for ``faults.seconds`` from the ``faults.nth`` insert on."""

    def __init__(self, inner: Store, faults: Faults, clock: Any = time.monotonic) -> None:
        self.inner, self.faults, self._clock = inner, faults, clock
        self.down_until: float | None = None

    def _check(self) -> None:
        if self.down_until is not None and self._clock() < self.down_until:
            raise StoreUnavailable("fault injection: store down")

    def command(self, sql: str, params: Params | None = None) -> None:
        self._check()
        self.inner.command(sql, params)

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        self._check()
        return self.inner.query(sql, params)

    def insert(self, table: str, columns: Sequence[str], data: bytes, fmt: str, token: str) -> None:
        if self.down_until is None and self.faults.reached("store_down"):
            self.down_until = self._clock() + self.faults.seconds
            log.warning("fault injection: store down for %.1fs", self.faults.seconds)
        self._check()
        self.inner.insert(table, columns, data, fmt, token)

    def use(self, database: str) -> None:
        self.inner.use(database)

    def close(self) -> None:
        self.inner.close()
