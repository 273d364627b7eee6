"""ServerStore's SQL and clickhouse-connect calls, run by the real engine.

There is no ClickHouse server here, so the injected client is clickhouse-connect's embedded
backend (``interface="chdb"``): same ServerStore code (raw_query, raw_insert with
``insert_deduplication_token``, command), only the transport differs from production.
chDB allows one directory per process: the client is closed after each test.
"""

# ruff: noqa: S608  (test SQL interpolates module constants only)
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest

from schemas.codec import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from sinks import ddl
from sinks.base import insert_token, write_batch
from sinks.ddl import Row
from sinks.records import decode_row
from sinks.server import ServerStore
from techne.errors import StoreUnavailable

pytestmark = pytest.mark.integration

DB = ddl.database_name("cnm")
TABLE = ddl.qualified_table(DB)


def rows(n: int) -> list[Row]:
    start = datetime(2024, 12, 31, 20, 0, tzinfo=UTC)
    return [
        decode_row(
            CATALOGUE.encode(
                SHARED_TICKET_ORDER,
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "ticket.order_placed",
                    "occurred_at": start + timedelta(hours=i),
                    "received_at": start + timedelta(hours=i, seconds=2),
                    "venue_id": "scene-nationale",
                    "agreement_id": "agr-7",
                    "purpose": "research",
                    "subject_pseudonym": f"{i:064x}",
                    "pseudonym_key_version": 2,
                    "performance_at": start,
                    "tariff": "reduit",
                    "amount_minor": i * 100,
                },
            )
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server") / "cnm"


@pytest.fixture
def store(store_dir: Path) -> Iterator[ServerStore]:
    opened = ServerStore(clickhouse_connect.get_client(interface="chdb", path=str(store_dir)), DB)
    try:
        opened.ensure_schema()
        opened.query(f"TRUNCATE TABLE {TABLE}")
        yield opened
    finally:
        opened.close()


def counts(store: ServerStore) -> tuple[int, int]:
    ((total, distinct),) = store.query(f"SELECT count(), count(DISTINCT event_id) FROM {TABLE}")
    return total, distinct


def test_schema_is_the_shared_ddl(store: ServerStore) -> None:
    store.ensure_schema()
    found = store.query(f"SELECT name, type FROM system.columns WHERE database = '{DB}' AND table = '{ddl.TABLE}'")
    assert found == [(c.name, c.ch_type) for c in ddl.COLUMNS]


def test_retried_batch_is_stored_once(store: ServerStore) -> None:
    batch = rows(200)
    assert write_batch(store, batch, "t-0-0-199").inserted == 200
    assert write_batch(store, batch, "t-0-0-199").duplicates == 200
    assert counts(store) == (200, 200)


def test_dedup_token_is_passed_to_the_engine(store: ServerStore) -> None:
    batch = rows(30)
    store.insert(batch, insert_token("t-0-0-29", batch))
    store.insert(batch, insert_token("t-0-0-29", batch))
    assert counts(store) == (30, 30)
    store.insert(batch, "another-token")  # different token: only the id check / FINAL protect
    assert counts(store) == (60, 30)
    ((final,),) = store.query(f"SELECT count() FROM {TABLE} FINAL")
    assert final == 30


def test_values_round_trip(store: ServerStore) -> None:
    (row,) = rows(1)
    write_batch(store, [row], "t-0-1-1")
    names = ", ".join(ddl.quote(c.name) for c in ddl.COLUMNS)
    (stored,) = store.query(f"SELECT {names} FROM {TABLE}")
    assert dict(zip([c.name for c in ddl.COLUMNS], stored, strict=True)) == row


def test_partner_database_is_current_after_ensure_schema(store: ServerStore) -> None:
    assert store.query(f"SELECT currentDatabase(), count() FROM {ddl.TABLE}") == [(DB, 0)]


def test_errors_are_store_unavailable(store: ServerStore) -> None:
    with pytest.raises(StoreUnavailable):
        store.query("SELECT no_such_column FROM system.one")
