"""ChdbStore against the real embedded engine (chDB) in a temporary directory.

chDB allows one store directory per process: every test opens the module's directory through
the ``store`` fixture (closed after the test) and never a second one at the same time; the
cross-process lock is exercised from subprocesses.
"""

# ruff: noqa: S608  (test SQL interpolates module constants only)
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from sinks import ddl
from sinks.base import Batch, insert_token, write_batch
from sinks.chdb import ChdbStore
from sinks.ddl import Row
from sinks.records import decode_row
from sinks.runner import open_store, partner_counts, partner_rows, query_store
from techne.errors import StoreLocked, StoreUnavailable
from techne.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DB = ddl.database_name("opera-lyon-partner")
TABLE = ddl.qualified_table(DB)


def rows(n: int, start: datetime = datetime(2024, 1, 30, 23, 0, tzinfo=UTC)) -> list[Row]:
    """``n`` rows decoded from real framed messages, spread over two months (two partitions)."""
    out = []
    for i in range(n):
        record: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "event_type": "ticket.order_placed",
            "occurred_at": start + timedelta(hours=i),
            "received_at": start + timedelta(hours=i, seconds=1),
            "venue_id": f"venue-{i % 3}",
            "agreement_id": "agr-1",
            "purpose": "cross_venue_analytics",
            "subject_pseudonym": f"{i:064x}",
            "pseudonym_key_version": 1,
            "quantity": i % 5 or None,
            "amount_minor": 1000 * i,
            "discipline": "opera",
        }
        out.append(decode_row(CATALOGUE.encode(SHARED_TICKET_ORDER, record)))
    return out


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb") / "partners" / "opera-lyon-partner"


@pytest.fixture
def store(store_dir: Path) -> Iterator[ChdbStore]:
    with ChdbStore(store_dir, DB) as opened:
        opened.ensure_schema()
        opened.query(f"TRUNCATE TABLE {TABLE}")
        yield opened


def counts(store: ChdbStore) -> tuple[int, int]:
    ((total, distinct),) = store.query(f"SELECT count(), count(DISTINCT event_id) FROM {TABLE}")
    return total, distinct


def test_schema_matches_the_avro_columns(store: ChdbStore) -> None:
    store.ensure_schema()  # idempotent
    found = store.query(f"SELECT name, type FROM system.columns WHERE database = '{DB}' AND table = '{ddl.TABLE}'")
    assert found == [(c.name, c.ch_type) for c in ddl.COLUMNS]
    ((engine, partition_key, sorting_key),) = store.query(
        f"SELECT engine, partition_key, sorting_key FROM system.tables WHERE database = '{DB}'"
    )
    assert (engine, partition_key, sorting_key) == (
        "ReplacingMergeTree",
        "toYYYYMM(occurred_at)",
        "venue_id, occurred_at, event_id",
    )


def test_batch_retried_after_success_is_stored_once(store: ChdbStore) -> None:
    batch = rows(300)
    token = "partner.opera-lyon-partner.ticketing-0-0-299"
    first = write_batch(store, batch, token)
    again = write_batch(store, batch, token)
    assert (first.inserted, first.duplicates, again.inserted, again.duplicates) == (300, 0, 0, 300)
    assert counts(store) == (300, 300)


def test_same_token_insert_is_dropped_by_the_engine(store: ChdbStore) -> None:
    batch = rows(50)
    token = insert_token("t-0-0-49", batch)
    store.insert(batch, token)
    store.insert(batch, token)  # bypasses the existing-id check: the token alone must dedup
    assert counts(store) == (50, 50)


def test_partially_landed_batch_is_completed_without_duplicates(store: ChdbStore) -> None:
    batch = rows(100)
    token = "t-0-0-99"
    store.insert(batch[:40], insert_token(token, batch))  # a first attempt that half-landed
    result = write_batch(store, batch, token)
    assert (result.inserted, result.duplicates) == (60, 40)
    assert counts(store) == (100, 100)


def test_duplicates_inside_a_batch_are_inserted_once(store: ChdbStore) -> None:
    batch = rows(10)
    result = write_batch(store, batch + batch[:4], "t-1-0-13")
    assert (result.inserted, result.duplicates) == (10, 4)
    assert counts(store) == (10, 10)


def test_values_round_trip(store: ChdbStore) -> None:
    (row,) = rows(1)
    write_batch(store, [row], "t-0-7-7")
    names = ", ".join(ddl.quote(c.name) for c in ddl.COLUMNS)
    (stored,) = store.query(f"SELECT {names} FROM {TABLE}")
    assert dict(zip([c.name for c in ddl.COLUMNS], stored, strict=True)) == row
    assert store.existing_event_ids([str(row["event_id"]), str(uuid.uuid4()), "not-a-uuid"]) == {row["event_id"]}


def test_ensure_schema_adds_columns_the_table_lacks(store: ChdbStore) -> None:
    store.query(f"ALTER TABLE {TABLE} DROP COLUMN currency")
    store.ensure_schema()
    assert ("currency",) in store.query(f"SELECT name FROM system.columns WHERE database = '{DB}'")


def test_data_survives_close_and_reopen(store_dir: Path) -> None:
    with ChdbStore(store_dir, DB) as first:
        first.ensure_schema()
        first.query(f"TRUNCATE TABLE {TABLE}")
        write_batch(first, rows(20), "t-0-0-19")
    with ChdbStore(store_dir, DB) as second:
        assert counts(second) == (20, 20)


def test_runner_reads_open_and_close_the_partner_store(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path})
    assert partner_counts(settings, "opera-lyon-partner") == {"rows": 0, "distinct_event_ids": 0}
    with open_store(settings, "opera-lyon-partner") as store:
        assert store.path == tmp_path / "partners" / "opera-lyon-partner"
        write_batch(store, rows(7), "t-0-0-6")
    assert partner_counts(settings, "opera-lyon-partner") == {"rows": 7, "distinct_event_ids": 7}
    assert partner_rows(settings, "opera-lyon-partner", "SELECT count() FROM ticket_orders") == [(7,)]
    assert "7" in query_store(settings, "opera-lyon-partner", "SELECT count() FROM ticket_orders")


def test_store_errors_are_store_unavailable(store: ChdbStore) -> None:
    with pytest.raises(StoreUnavailable):
        store.query("SELECT no_such_column FROM system.one")
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.query("SELECT 1")


def test_ten_thousand_rows(store: ChdbStore) -> None:
    batch = Batch("partner.p.ticketing", 0, max_messages=10_000, max_age_s=1.0)
    for offset, row in enumerate(rows(10_000)):
        batch.add(offset, row, now=0.0)
    assert batch.ready(0.0)
    assert write_batch(store, batch.rows, batch.token()).inserted == 10_000
    assert write_batch(store, batch.rows, batch.token()).duplicates == 10_000
    assert counts(store) == (10_000, 10_000)


def test_a_second_directory_in_the_same_process_is_store_locked(store: ChdbStore, tmp_path: Path) -> None:
    with pytest.raises(StoreLocked, match="one store directory per process"):
        ChdbStore(tmp_path / "other", "other")
    assert store.query("SELECT 1") == [(1,)]  # the open store is unharmed


HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sinks.chdb import ChdbStore
    with ChdbStore(Path(sys.argv[1]), "p"):
        print("ready", flush=True)
        sys.stdin.readline()
    """
)

TRY_OPEN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sinks.chdb import ChdbStore
    from techne.errors import StoreLocked
    try:
        ChdbStore(Path(sys.argv[1]), "p").close()
        print("opened")
    except StoreLocked as exc:
        print("StoreLocked:", exc)
    """
)


def python(script: str, path: Path, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(path)], cwd=REPO, text=True, stdout=subprocess.PIPE, **kw
    )


def test_directory_held_by_this_process_is_store_locked_for_another(store: ChdbStore, store_dir: Path) -> None:
    out, _ = python(TRY_OPEN, store_dir, stderr=subprocess.DEVNULL).communicate(timeout=60)
    assert out.startswith("StoreLocked:") and "held by another process" in out


def test_directory_held_by_another_process_is_store_locked_here(tmp_path: Path) -> None:
    path = tmp_path / "held"
    holder = python(HOLD, path, stdin=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLocked, match=f"PID {holder.pid}"):
            ChdbStore(path, "p")
    finally:
        holder.communicate("\n", timeout=60)
    with ChdbStore(path, "p") as store:  # released when the holder exits
        assert store.query("SELECT 1") == [(1,)]
