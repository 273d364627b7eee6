"""Process-level entry points of the sinks: what ``techne sink`` / ``techne query``, the demo and
reports call.

- :func:`run_sink_process` blocks running one partner's sink until SIGTERM or SIGINT, then
  flushes, commits and returns normally (exit code 0). The store is the ClickHouse server at
  ``settings.clickhouse_url`` when set, else the embedded one in
  ``settings.partner_store_dir(partner)`` (a venue's own store, ``venue:<venue>``: under
  ``<data>/venues/``). :func:`run_audit_process` does the same for the
  audit sink (database ``audit``, table ``decisions``; embedded in ``<data_dir>/audit``). Both
  serve ``/metrics`` on ``settings.metrics_port`` if set; ``wrap_store`` (tests: fault
  injection, ``tests/support/faults.py``) wraps the store the sink writes to. They raise
  :class:`~core.errors.StoreLocked` when another process
  holds the store, :class:`~core.errors.ConfigError` for a partner without agreement.
- With an embedded store, the sink process also serves read-only queries on its store on
  loopback (:mod:`sinks.read_server`), since a chDB directory is exclusive to its process.
- :func:`query_store`, :func:`partner_rows`, :func:`partner_counts` and :func:`audit_rows` read
  through the one read path, :mod:`sinks.reader` (read-only, timeout, row cap), whether the
  store's sink runs or not, and never create a store (``StoreMissing``); :func:`partner_ref` /
  :func:`audit_ref` name the stores for it.
  Queries run with the partner's (or ``audit``) database current: ``SELECT ... FROM
  ticket_orders`` works unqualified.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core import metrics as techne_metrics
from core.errors import ConfigError, StoreLocked
from core.settings import Settings
from core.venues import load_venues
from schemas.agreements import Agreement, load_agreements
from sinks import audit, partner_sql
from sinks.base import Store
from sinks.chdb import ChdbStore
from sinks.consumer import run_audit_sink, run_sink
from sinks.ddl import quote
from sinks.metrics import AUDIT_LABEL, declare_sink
from sinks.migrate import ensure_partner, ensure_table
from sinks.read_server import ReadServer, start_for_store
from sinks.reader import StoreRef, open_reader, read_rows, require_store
from sinks.server import connect
from sinks.tables import TICKET_ORDERS, VENUE_STORE, PartnerTables, partner_tables, venue_tables

log = logging.getLogger(__name__)

STORE_WAIT_S = 30.0
"""How long a starting sink waits for its embedded store held by another process: a reader that
found no running sink (``techne query``, a report) holds the directory for one query; a sink
that still runs holds it for good, and the start then fails with ``StoreLocked``."""


def open_embedded(path: Path, wait_s: float = STORE_WAIT_S) -> ChdbStore:
    """The embedded store at ``path`` for a sink, waiting up to ``wait_s`` for another process's
    lock (see :data:`STORE_WAIT_S`); ``StoreLocked`` past it, or at once for this process's own."""
    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            return ChdbStore(path)
        except StoreLocked as exc:
            if "another process" not in str(exc) or time.monotonic() >= deadline:
                raise
            if not told:
                log.warning("%s; waiting up to %.0f s for it to be released", exc, wait_s)
                told = True
            time.sleep(0.2)


def audit_store_dir(settings: Settings) -> Path:
    """Directory of the audit sink's embedded store."""
    return settings.data_dir / "audit"


def tables_for(settings: Settings, partner_id: str) -> PartnerTables:
    """The partner's tables under the agreements in ``settings.agreements_dir``, or, for
    ``venue:<venue>`` (a venue of ``settings.venues_file``), that venue's own store."""
    if partner_id.startswith(VENUE_STORE):
        venue = partner_id.removeprefix(VENUE_STORE)
        if venue not in load_venues(settings.venues_file):
            raise ConfigError(f"unknown venue {venue!r}: no store of its own")
        return venue_tables(venue)
    return partner_tables(partner_id, agreements_of(settings.agreements_dir))


def agreements_of(directory: Path) -> list[Agreement]:
    """The agreements in ``directory``, parsed again only when a file there changed (readers name
    a store's tables at every read: parsing and validating every YAML each time cost ~8 ms)."""
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(directory.glob("*.yaml")))
    return list(_parsed(directory, stamp))


@functools.lru_cache(maxsize=16)
def _parsed(directory: Path, stamp: tuple[tuple[str, int, int], ...]) -> tuple[Agreement, ...]:
    return tuple(load_agreements(directory))


def store_dir(settings: Settings, partner_id: str) -> Path:
    """Directory of a partner's embedded store, or of a venue's own (``<data>/venues/<venue>``)."""
    if partner_id.startswith(VENUE_STORE):
        return settings.data_dir / "venues" / partner_id.removeprefix(VENUE_STORE)
    return settings.partner_store_dir(partner_id)


def _server(settings: Settings) -> Store | None:
    """The ClickHouse server store when ``settings.clickhouse_url`` is set."""
    if not settings.clickhouse_url:
        return None
    password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else ""
    return connect(settings.clickhouse_url, username=settings.clickhouse_user, password=password)


def open_store(settings: Settings, partner_id: str, *, create: bool = True) -> ChdbStore:
    """The partner's embedded store, tables ensured (raises StoreLocked / StoreUnavailable, and
    StoreMissing when ``create`` is false and the store does not exist)."""
    tables = tables_for(settings, partner_id)
    if not create:
        require_store(settings, partner_ref(settings, partner_id))
    store = ChdbStore(store_dir(settings, partner_id))
    try:
        ensure_partner(store, tables)
    except BaseException:
        store.close()
        raise
    return store


def partner_ref(settings: Settings, partner_id: str) -> StoreRef:
    """The partner's store for :mod:`sinks.reader` (tables ensured when it is opened directly)."""
    tables = tables_for(settings, partner_id)
    return StoreRef(partner_id, store_dir(settings, partner_id), tables.database,
                    ensure=lambda store: ensure_partner(store, tables))


def audit_ref(settings: Settings) -> StoreRef:
    """The audit store for :mod:`sinks.reader`."""
    return StoreRef("audit", audit_store_dir(settings), audit.DATABASE,
                    ensure=lambda store: ensure_table(store, audit.SPEC))


def _read_server(settings: Settings, ref: StoreRef) -> ReadServer | None:
    """Serve read-only queries on the embedded store this process holds (none on a server)."""
    if settings.clickhouse_url:
        return None
    token = settings.read_token.get_secret_value() if settings.read_token else None
    return start_for_store(ref.store_dir, ref.database, token=token, max_rows=settings.read_max_rows,
                           timeout_s=settings.read_timeout_s)


def open_audit_store(settings: Settings) -> ChdbStore:
    store = ChdbStore(audit_store_dir(settings))
    try:
        ensure_table(store, audit.SPEC)
        store.use(audit.DATABASE)
    except BaseException:
        store.close()
        raise
    return store


GC_THRESHOLD = (100_000, 50, 100)
"""A sink allocates a few short-lived, acyclic objects per message: collecting generation 0
every 700 allocations (the default) costs it about a third of its decoding time."""


def _setup(settings: Settings) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    techne_metrics.serve(settings.metrics_port, settings.metrics_host, techne_metrics.SINK)
    gc.freeze()  # what is loaded so far lives as long as the process
    gc.set_threshold(*GC_THRESHOLD)


def _serve(name: str, body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("sink %s: consuming", name)
        await body(stop)
        log.info("sink %s: stopped", name)

    asyncio.run(main())


def run_sink_process(settings: Settings, partner_id: str, wrap_store: Callable[[Store], Store] | None = None) -> None:
    """Run ``partner_id``'s sink until SIGTERM/SIGINT (see module doc)."""
    _setup(settings)
    tables = tables_for(settings, partner_id)
    declare_sink(partner_id, [t.name for t in tables.all])
    store: Store = _server(settings) or open_embedded(store_dir(settings, partner_id))
    if wrap_store is not None:
        store = wrap_store(store)
    reads = None
    try:
        reads = _read_server(settings, partner_ref(settings, partner_id))
        _serve(partner_id, lambda stop: run_sink(settings, tables, store, stop))
    finally:
        if reads is not None:
            reads.close()
        store.close()


def run_audit_process(settings: Settings) -> None:
    """Run the audit sink until SIGTERM/SIGINT (see module doc)."""
    _setup(settings)
    declare_sink(AUDIT_LABEL, [audit.TABLE])
    store = _server(settings) or open_embedded(audit_store_dir(settings))
    reads = None
    try:
        reads = _read_server(settings, audit_ref(settings))
        _serve("audit", lambda stop: run_audit_sink(settings, store, stop))
    finally:
        if reads is not None:
            reads.close()
        store.close()


def query_store(settings: Settings, partner_id: str, sql: str, fmt: str = "PrettyCompact") -> str:
    """Run ``sql`` (read-only, on the store's own database only: :mod:`sinks.partner_sql`) on the
    partner's store and return the output rendered in ``fmt``."""
    ref = partner_ref(settings, partner_id)
    with open_reader(settings, ref) as reader:
        return partner_sql.run(reader, ref.database, sql, fmt)


def partner_rows(settings: Settings, partner_id: str, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` (read-only) on the partner's store; values as JSON types (numbers, strings, null)."""
    return read_rows(settings, partner_ref(settings, partner_id), sql)


def partner_counts(settings: Settings, partner_id: str, table: str = TICKET_ORDERS) -> dict[str, int]:
    """``{"rows": count(), "distinct_event_ids": uniqExact(event_id)}`` of a partner table
    (``ticket_orders`` by default; ``email_clicks`` reads as empty for a partner without it)."""
    if table != TICKET_ORDERS and table not in {t.name for t in tables_for(settings, partner_id).shared}:
        return {"rows": 0, "distinct_event_ids": 0}
    sql = f"SELECT count(), uniqExact(event_id) FROM {quote(table)}"  # noqa: S608
    ((rows, distinct),) = partner_rows(settings, partner_id, sql)
    return {"rows": int(rows), "distinct_event_ids": int(distinct)}


def audit_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` (read-only) on the audit store (``decisions`` unqualified); values as JSON types."""
    return read_rows(settings, audit_ref(settings), sql)
