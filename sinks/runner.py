"""Process-level entry points of the sink: what ``techne sink`` / ``techne query`` and the demo call.

- :func:`run_sink_process` blocks running one partner's sink into its embedded store
  (``settings.partner_store_dir(partner)``) until SIGTERM or SIGINT, then flushes, commits and
  returns normally (exit code 0). It serves ``/metrics`` on ``settings.metrics_port`` if set.
  It raises :class:`~techne.errors.StoreLocked` when another process holds the store.
- :func:`query_store`, :func:`partner_rows` and :func:`partner_counts` open the same store for
  a read and close it; they raise ``StoreLocked`` while that partner's sink runs (chDB
  directories are exclusive to one process), so stop the sink first. Queries run with the
  partner database current: ``SELECT ... FROM ticket_orders`` works unqualified.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from sinks.chdb import ChdbStore
from sinks.consumer import run_sink
from sinks.ddl import TABLE, database_name
from techne import metrics as techne_metrics
from techne.settings import Settings

log = logging.getLogger(__name__)


def open_store(settings: Settings, partner_id: str) -> ChdbStore:
    """The partner's embedded store, schema ensured (raises StoreLocked / StoreUnavailable)."""
    store = ChdbStore(settings.partner_store_dir(partner_id), database_name(partner_id))
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store


async def _serve(settings: Settings, partner_id: str, store: ChdbStore) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("sink %s: consuming into %s", partner_id, store.path)
    await run_sink(settings, partner_id, store, stop)
    log.info("sink %s: stopped", partner_id)


def run_sink_process(settings: Settings, partner_id: str) -> None:
    """Run ``partner_id``'s sink until SIGTERM/SIGINT (see module doc)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    techne_metrics.serve(settings.metrics_port, settings.metrics_host)
    store = open_store(settings, partner_id)
    try:
        asyncio.run(_serve(settings, partner_id, store))
    finally:
        store.close()


def query_store(settings: Settings, partner_id: str, sql: str, fmt: str = "PrettyCompact") -> str:
    """Run ``sql`` on the partner's store and return the output rendered in ``fmt``."""
    with open_store(settings, partner_id) as store:
        return store.query_text(sql, fmt)


def partner_rows(settings: Settings, partner_id: str, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the partner's store; values as JSON types (numbers, strings, null)."""
    with open_store(settings, partner_id) as store:
        return store.query(sql)


def partner_counts(settings: Settings, partner_id: str) -> dict[str, int]:
    """``{"rows": count(), "distinct_event_ids": count(DISTINCT event_id)}`` of the partner table."""
    ((rows, distinct),) = partner_rows(settings, partner_id, f"SELECT count(), uniqExact(event_id) FROM {TABLE}")  # noqa: S608
    return {"rows": int(rows), "distinct_event_ids": int(distinct)}
