"""Fault injection for the crash and outage tests, through the seams users have. TEST-ONLY.

``python -m tests.support.faults <techne command ...>`` runs a ``techne`` command with the fault
named by ``TECHNE_TEST_FAULT`` armed (nothing of this ships in the production packages):

* ``techne sink``, through ``run_sink_process(wrap_store=...)``, a wrapper around the store:
  ``before_insert:N`` — SIGKILL when the N-th ``ticket_orders`` insert is about to run;
  ``during_insert:N`` — insert the first half of the N-th insert's rows (a multi-block insert
  that crashed half-way), then SIGKILL; ``after_insert:N`` — SIGKILL once the N-th insert is
  written, before its offsets are committed; ``after_erase:N`` — SIGKILL after the N-th erasure
  ``DELETE`` (before its tombstone, audit record and commit); ``store_down:N:S`` — from the N-th
  insert on, every store call fails with ``StoreUnavailable`` for S seconds;
* ``techne gateway``, through ``create_app(wrap_delivery=...)``: ``after_produce:N`` — SIGKILL
  right after the N-th durable delivery, before answering (the sender must retry).

Any other command (or a fault of another kind of process) runs unchanged. Each kill logs
``fault injection: SIGKILL <point>`` first.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import fastavro

from core.errors import ConfigError, StoreUnavailable

ENV = "TECHNE_TEST_FAULT"
FAULT_TABLE = "ticket_orders"
SINK_POINTS = ("before_insert", "during_insert", "after_insert", "after_erase", "store_down")
log = logging.getLogger(__name__)


def kill(detail: str) -> None:
    log.warning("fault injection: SIGKILL %s", detail)
    logging.shutdown()
    os.kill(os.getpid(), signal.SIGKILL)


def parse(spec: str) -> tuple[str, int, float]:
    parts = spec.split(":")
    try:
        point, nth, seconds = parts[0], int(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0
    except (IndexError, ValueError):
        raise ConfigError(f"{ENV}={spec!r}: expected point:N[:seconds]") from None
    if nth < 1 or (point == "store_down") != (seconds > 0):
        raise ConfigError(f"{ENV}={spec!r}: N < 1, or seconds missing/extra")
    return point, nth, seconds


def _half(data: bytes) -> tuple[bytes, int, int]:
    """The first half of the records of an Avro object container (the sinks' insert format),
    with how many records that is out of how many."""
    reader = fastavro.reader(io.BytesIO(data))
    records = list(reader)
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(reader.writer_schema), records[: len(records) // 2])
    return out.getvalue(), len(records) // 2, len(records)


class FaultStore:
    """A store wrapper arming one sink fault (see module doc); everything else is delegated."""

    def __init__(self, inner: Any, point: str, nth: int, seconds: float = 0.0) -> None:
        self.inner, self.point, self.nth, self.seconds = inner, point, nth, seconds
        self.seen: Counter[str] = Counter()
        self.down_until: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _reached(self, point: str) -> bool:
        if point != self.point:
            return False
        self.seen[point] += 1
        return self.seen[point] == self.nth

    def _check(self) -> None:
        if self.down_until is not None and time.monotonic() < self.down_until:
            raise StoreUnavailable("fault injection: store down")

    def command(self, sql: str, params: Any = None) -> None:
        self._check()
        self.inner.command(sql, params)
        if sql.lstrip().upper().startswith("DELETE") and self._reached("after_erase"):
            kill("after_erase")

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        self._check()
        return self.inner.query(sql, params)  # type: ignore[no-any-return]

    def insert(self, table: str, columns: Sequence[str], data: bytes, fmt: str, token: str) -> None:
        if self.down_until is None and self._reached("store_down"):
            self.down_until = time.monotonic() + self.seconds
            log.warning("fault injection: store down for %.1fs", self.seconds)
        self._check()
        orders = table.rsplit(".", 1)[-1].strip("`\"") == FAULT_TABLE
        if orders and self._reached("before_insert"):
            kill("before_insert")
        if orders and self._reached("during_insert"):
            half, landed, total = _half(data)
            self.inner.insert(table, columns, half, fmt, token)
            kill(f"during_insert: {landed} of {total} rows inserted")
        self.inner.insert(table, columns, data, fmt, token)
        if orders and self._reached("after_insert"):
            kill("after_insert")


def _arg(args: list[str], name: str, default: str) -> str:
    return args[args.index(name) + 1] if name in args else default


def main(argv: list[str]) -> None:
    from core.settings import Settings

    spec = os.environ.get(ENV, "")
    command = argv[0] if argv else ""
    point, nth, seconds = parse(spec) if spec else ("", 0, 0.0)
    if command == "sink" and point in SINK_POINTS:
        from sinks.runner import run_sink_process

        log.warning("TEST-ONLY fault injection armed: %s", spec)
        run_sink_process(Settings(), _arg(argv, "--partner", ""),
                         wrap_store=lambda store: FaultStore(store, point, nth, seconds))  # type: ignore[arg-type,return-value]
        return
    if command == "gateway" and point == "after_produce":
        import uvicorn

        from producers.gateway import create_app

        def wrap(delivery: Any) -> Any:
            inner, delivered = delivery.deliver, Counter[str]()

            async def deliver(records: Any) -> None:
                await inner(records)
                delivered["n"] += 1
                if delivered["n"] == nth:
                    kill("after_produce: delivered, before answering")

            delivery.deliver = deliver
            return delivery

        uvicorn.run(create_app(Settings(), wrap_delivery=wrap), host=_arg(argv, "--host", "127.0.0.1"),
                    port=int(_arg(argv, "--port", "8080")), log_level="warning", access_log=False)
        return
    from techne.cli import main as techne

    sys.argv = ["techne", *argv]
    techne()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main(sys.argv[1:])
