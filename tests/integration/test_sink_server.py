"""ServerStore's statements and clickhouse-connect calls, run by the real engine.

There is no ClickHouse server here, so the injected client is clickhouse-connect's embedded
backend (``interface="chdb"``): same ServerStore code (``raw_query`` with parameters,
``command``, ``raw_insert`` of an Avro body with ``insert_deduplication_token``), only the
transport differs from production. With ``TECHNE_TEST_CLICKHOUSE_URL`` set (e.g. the compose
stack's ``http://techne:…@127.0.0.1:8123``), the same tests also run against that server.
chDB allows one directory per process: the client is closed after each test.
"""

# ruff: noqa: S608  (test SQL interpolates module constants only)
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from core.errors import StoreUnavailable
from schemas.agreements import Agreement
from sinks.base import Batch, insert_token
from sinks.erasure import EraseHandler, Tombstones, parse_command
from sinks.framing import SharedFormat, SharedRow
from sinks.migrate import ensure_partner
from sinks.orders import OrdersHandler
from sinks.server import ServerStore, connect
from sinks.tables import partner_tables
from tests.integration.sink_helpers import erasure_value, shared_value

pytestmark = pytest.mark.integration

PARTNER = "cnm"
SHARED = SharedFormat()
TABLES = partner_tables(PARTNER, [Agreement.model_validate({
    "id": "dsa-cnm", "provider_venues": ["opera-lyon"], "partner": PARTNER, "purposes": ["research"],
    "event_types": ["ticket.order_placed"], "allowed_fields": ["quantity", "production"], "retention_days": 365,
    "valid_from": "2026-01-01", "valid_until": "2030-12-31"})])
ORDERS = TABLES.orders.qualified
SERVER_URL = os.environ.get("TECHNE_TEST_CLICKHOUSE_URL")


def rows(n: int, **kw: Any) -> list[SharedRow]:
    return [SHARED.parse(shared_value(i, agreement_id="dsa-cnm", purpose="research", **kw)) for i in range(n)]


def batch_of(items: list[SharedRow], start: int = 0) -> Batch[SharedRow]:
    batch: Batch[SharedRow] = Batch(f"partner.{PARTNER}.ticketing", 1, 10_000, 1.0)
    for offset, row in enumerate(items, start):
        batch.add(offset, row, 0.0)
    return batch


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server") / PARTNER


@pytest.fixture(params=["chdb", "server"])
def store(request: pytest.FixtureRequest, store_dir: Path) -> Iterator[ServerStore]:
    if request.param == "server":
        if not SERVER_URL:
            pytest.skip("TECHNE_TEST_CLICKHOUSE_URL not set")
        opened = connect(SERVER_URL)
    else:
        opened = ServerStore(clickhouse_connect.get_client(interface="chdb", path=str(store_dir)))
    try:
        for spec in TABLES.all:
            opened.command(f"DROP TABLE IF EXISTS {spec.qualified} SYNC")
        ensure_partner(opened, TABLES)
        yield opened
    finally:
        opened.close()


def handler(store: ServerStore) -> OrdersHandler:
    return OrdersHandler(store, TABLES, Tombstones(store, TABLES), topic=f"partner.{PARTNER}.ticketing",
                         batch_rows=10_000, batch_seconds=1.0)


def counts(store: ServerStore) -> tuple[int, int]:
    ((total, distinct),) = store.query(f"SELECT count(), uniqExact(event_id) FROM {ORDERS}")
    return int(total), int(distinct)


def test_schema_is_the_shared_ddl(store: ServerStore) -> None:
    ensure_partner(store, TABLES)
    found = store.query("SELECT name, type FROM system.columns WHERE database = {d:String} AND table = {t:String}",
                        {"d": TABLES.database, "t": "ticket_orders"})
    assert found == [(c.name, c.ch_type) for c in TABLES.orders.columns]


def test_retried_batch_is_stored_once(store: ServerStore) -> None:
    batch = batch_of(rows(200))
    assert handler(store).write_sync([batch])[0].inserted == 200
    assert handler(store).write_sync([batch])[0].duplicates == 200
    assert counts(store) == (200, 200)


def test_dedup_token_is_passed_to_the_engine(store: ServerStore) -> None:
    batch = rows(30)
    data = SHARED.container(batch[0].schema_id, batch)
    columns = [c for c in TABLES.orders.names if c != "retain_until"]
    token = insert_token("t-0-0-29", (r.event_id for r in batch))
    store.insert(ORDERS, columns, data, "Avro", token)
    store.insert(ORDERS, columns, data, "Avro", token)
    assert counts(store) == (30, 30)
    store.insert(ORDERS, columns, data, "Avro", "another-token")  # only the id check / FINAL protect now
    assert counts(store) == (60, 30)
    ((final,),) = store.query(f"SELECT count() FROM {ORDERS} FINAL")
    assert final == 30


def test_erasure_statements_run_through_the_client(store: ServerStore) -> None:
    subject = "c" * 64
    t0 = datetime.now(UTC) - timedelta(hours=1)
    h = handler(store)
    h.write_sync([batch_of(rows(4, at=t0 - timedelta(minutes=1), subject=subject) + rows(3))])[0]
    published: list[bytes] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append(value)

    eraser = EraseHandler(store, TABLES, h.tombstones, publish, topic=f"partner.{PARTNER}.erasure")
    command = parse_command(erasure_value(PARTNER, subject, occurred_at=t0), PARTNER)
    assert asyncio.run(eraser.execute(command)) == 1
    assert asyncio.run(eraser.execute(command)) == 0
    assert counts(store) == (3, 3) and len(published) == 1
    assert h.write_sync([batch_of(rows(1, at=t0 - timedelta(minutes=2), subject=subject), 50)])[0].suppressed == 1


def test_partner_database_is_current_after_ensure(store: ServerStore) -> None:
    assert store.query("SELECT currentDatabase(), count() FROM ticket_orders") == [(TABLES.database, 0)]


def test_errors_are_store_unavailable(store: ServerStore) -> None:
    with pytest.raises(StoreUnavailable):
        store.query("SELECT no_such_column FROM system.one")
