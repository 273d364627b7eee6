"""The partner store on the real embedded engine (chDB): tables, idempotent writes, schema
evolution, retention (TTL), erasure, locking.

chDB allows one store directory per process: every test opens the module's directory through
the ``store`` fixture (closed after the test) and never a second one at the same time; the
cross-process lock is exercised from subprocesses.
"""

# ruff: noqa: S608  (test SQL interpolates module constants only)
from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import StoreLocked, StoreMissing, StoreUnavailable
from core.settings import Settings
from core.topics import AUDIT
from schemas.agreements import Agreement
from schemas.codec import Catalogue
from schemas.loader import load_versions
from schemas.models import SHARED_TICKET_ORDER
from sinks import audit
from sinks.base import Batch, insert_token
from sinks.chdb import ChdbStore
from sinks.ddl import quote
from sinks.erasure import EraseHandler, Tombstones, micros, parse_command
from sinks.framing import SharedFormat, SharedRow
from sinks.migrate import ensure_partner, ensure_table
from sinks.orders import OrdersHandler
from sinks.records import decode_row
from sinks.runner import audit_rows, open_audit_store, open_store, partner_counts, partner_rows, query_store
from sinks.tables import PartnerTables, partner_tables, shared_columns
from tests.integration.sink_helpers import REPO, erasure_value, shared_record, shared_value, write_agreement

pytestmark = pytest.mark.integration

PARTNER = "opera-lyon-partner"
TOPIC = f"partner.{PARTNER}.ticketing"
SHARED = SharedFormat()


def agreement(**overrides: Any) -> Agreement:
    fields: dict[str, Any] = {
        "id": "dsa-test", "provider_venues": ["opera-lyon"], "partner": PARTNER,
        "purposes": ["cross_venue_analytics", "marketing"], "event_types": ["ticket.order_placed"],
        "allowed_fields": ["production", "performance_id", "quantity", "departement"], "retention_days": 400,
        "valid_from": "2026-01-01", "valid_until": "2030-12-31",
    }
    return Agreement.model_validate({**fields, **overrides})


TABLES = partner_tables(PARTNER, [agreement()])
ORDERS = TABLES.orders.qualified


def batch_of(rows: list[SharedRow], start: int = 0) -> Batch[SharedRow]:
    batch: Batch[SharedRow] = Batch(TOPIC, 0, max_messages=len(rows) or 1, max_age_s=1.0)
    for offset, row in enumerate(rows, start):
        batch.add(offset, row, now=0.0)
    return batch


def rows(n: int, **kw: Any) -> list[SharedRow]:
    return [SHARED.parse(shared_value(i, **kw)) for i in range(n)]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb") / "partners" / PARTNER


@pytest.fixture
def store(store_dir: Path) -> Iterator[ChdbStore]:
    with ChdbStore(store_dir) as opened:
        for spec in TABLES.all:
            opened.command(f"DROP TABLE IF EXISTS {spec.qualified} SYNC")
        ensure_partner(opened, TABLES)
        yield opened


def handler(store: ChdbStore, tables: PartnerTables = TABLES, **kw: Any) -> OrdersHandler:
    return OrdersHandler(store, tables, Tombstones(store, tables), topic=TOPIC, batch_rows=10_000,
                         batch_seconds=1.0, **kw)


def counts(store: ChdbStore) -> tuple[int, int]:
    ((total, distinct),) = store.query(f"SELECT count(), uniqExact(event_id) FROM {ORDERS}")
    return int(total), int(distinct)


def test_tables_follow_the_projection(store: ChdbStore) -> None:
    ensure_partner(store, TABLES)  # idempotent
    found = store.query(f"SELECT name, type FROM system.columns WHERE database = '{TABLES.database}' "
                        "AND table = 'ticket_orders'")
    assert found == [(c.name, c.ch_type) for c in TABLES.orders.columns]
    assert "amount_minor" not in TABLES.orders.names
    ((engine, partition_key, sorting_key, create),) = store.query(
        f"SELECT engine, partition_key, sorting_key, create_table_query FROM system.tables "
        f"WHERE database = '{TABLES.database}' AND name = 'ticket_orders'"
    )
    assert (engine, partition_key, sorting_key) == (
        "ReplacingMergeTree", "toYYYYMM(occurred_at)", "purpose, venue_id, occurred_at, event_id")
    assert "TTL retain_until" in create


def test_batch_retried_after_success_is_stored_once(store: ChdbStore) -> None:
    batch = batch_of(rows(300))
    first = handler(store).write_sync([batch])[0]
    again = handler(store).write_sync([batch])[0]
    assert (first.inserted, first.duplicates, again.inserted, again.duplicates) == (300, 0, 0, 300)
    assert counts(store) == (300, 300)


def test_duplicates_are_found_in_memory_then_in_the_store_once_forgotten(store: ChdbStore) -> None:
    h = handler(store)
    h.recent.max_ids = 100
    first = rows(250)
    assert h.write_sync([batch_of(first)])[0].inserted == 250
    assert h.recent.floor is not None and len(h.recent) <= 100  # the oldest minutes were forgotten
    again = h.write_sync([batch_of(first + rows(5), start=300)])[0]  # some answered from memory, some by a query
    assert (again.inserted, again.duplicates) == (5, 250)
    assert counts(store) == (255, 255)


def test_same_token_insert_is_dropped_by_the_engine(store: ChdbStore) -> None:
    batch = rows(50)
    data = SHARED.container(batch[0].schema_id, batch)
    columns = [c for c in TABLES.orders.names if c != "retain_until"]
    token = insert_token("t-0-0-49", (r.event_id for r in batch))
    store.insert(ORDERS, columns, data, "Avro", token)
    store.insert(ORDERS, columns, data, "Avro", token)  # bypasses the existing-id check: the token alone dedups
    assert counts(store) == (50, 50)


def test_partially_landed_batch_is_completed_without_duplicates(store: ChdbStore) -> None:
    batch = batch_of(rows(100))
    h = handler(store)
    h._insert_group(f"{batch.token()}-s{batch.items[0].schema_id}", batch.items[0].schema_id, batch.items[:40])
    # (the token a first attempt of this very batch would carry)
    result = h.write_sync([batch])[0]
    assert (result.inserted, result.duplicates) == (60, 40)
    assert counts(store) == (100, 100)


def test_duplicates_inside_a_batch_are_inserted_once(store: ChdbStore) -> None:
    batch = rows(10)
    result = handler(store).write_sync([batch_of(batch + batch[:4])])[0]
    assert (result.inserted, result.duplicates) == (10, 4)
    assert counts(store) == (10, 10)


def test_the_engine_decodes_what_the_python_decoder_decodes(store: ChdbStore) -> None:
    batch = rows(20, at=datetime(2026, 6, 1, 20, 0, 0, 123456, tzinfo=UTC))
    handler(store).write_sync([batch_of(batch)])[0]
    names = [c for c in TABLES.orders.names if c != "retain_until"]
    stored = {r[0]: dict(zip(names, r, strict=True))
              for r in store.query(f"SELECT {', '.join(quote(n) for n in names)} FROM {ORDERS}")}
    for row in batch:
        expected = {k: v for k, v in decode_row(row.value).items() if k in names}
        assert stored[row.event_id] == expected


def test_a_row_the_engine_refuses_is_set_aside_and_the_rest_inserted(store: ChdbStore) -> None:
    batch = rows(5)
    good = shared_value(99)
    broken = SHARED.parse(good[: len(good) - 10])  # leading fields intact, cut inside a stored field (quantity)
    result = handler(store).write_sync([batch_of([*batch[:2], broken, *batch[2:]])])[0]
    assert result.inserted == 5 and [r.offset for r in result.rejected] == [2]
    assert result.rejected[0].error.reason == "corrupt_body"
    assert counts(store) == (5, 5)


def test_schema_evolution_adds_columns_without_losing_data(store: ChdbStore) -> None:
    narrow = partner_tables(PARTNER, [agreement(allowed_fields=["quantity"])])
    for spec in TABLES.all:
        store.command(f"DROP TABLE {spec.qualified} SYNC")
    ensure_partner(store, narrow)
    old = rows(30)
    handler(store, narrow).write_sync([batch_of(old)])[0]
    # a v2 of the shared schema with one more optional field, and an agreement allowing more fields
    versions = load_versions()
    latest = next(v for v in reversed(versions) if v.name == SHARED_TICKET_ORDER)
    v2_raw = {**latest.raw, "fields": [*latest.raw["fields"],
                                       {"name": "seat_zone", "type": ["null", "string"], "default": None}]}
    v2 = dataclasses.replace(latest, version=latest.version + 1, schema_id=latest.schema_id + 90, raw=v2_raw)
    catalogue = Catalogue(versions=[*versions, v2])
    # (an agreement naming a field the shipped catalogue does not have: built without validation)
    fields = agreement().model_dump() | {"allowed_fields": ["quantity", "production", "departement", "seat_zone"]}
    wide = partner_tables(PARTNER, [Agreement.model_construct(**fields)], shared_columns(catalogue))
    ensure_partner(store, wide)
    assert {"production", "departement", "seat_zone"} <= {
        n for (n,) in store.query(f"SELECT name FROM system.columns WHERE database = '{wide.database}' "
                                  "AND table = 'ticket_orders'")}
    shared = SharedFormat(catalogue)
    new_v1 = [shared.parse(shared_value(i)) for i in range(10)]
    new_v2 = [shared.parse(catalogue.encode(SHARED_TICKET_ORDER, shared_record(i, seat_zone="balcon")))
              for i in range(10)]
    assert {r.schema_id for r in new_v2} == {v2.schema_id}
    result = handler(store, wide, shared=shared).write_sync([batch_of(new_v1 + new_v2, start=100)])[0]
    assert result.inserted == 20
    assert counts(store) == (50, 50)
    old_ids = [r.event_id for r in old]
    assert store.query(f"SELECT count(), countIf(quantity IS NOT NULL), countIf(production IS NULL) FROM {ORDERS} "
                       f"WHERE toString(event_id) IN {tuple(old_ids)}") == [(30, 30, 30)]
    assert store.query(f"SELECT seat_zone, count() FROM {ORDERS} WHERE production IS NOT NULL "
                       "GROUP BY seat_zone ORDER BY seat_zone NULLS FIRST") == [(None, 10), ("balcon", 10)]


def test_retention_ttl_removes_old_rows_on_optimize_final(store: ChdbStore) -> None:
    store.command(f"SYSTEM STOP TTL MERGES {ORDERS}")  # else the engine drops them within a second on its own
    long_ago = datetime.now(UTC) - timedelta(days=500)  # 400-day retention: expired
    old = rows(20, at=long_ago)
    young = rows(15)
    # accepted as if it were still a year and a half ago (today's sink withholds expired rows)
    handler(store, clock_today=lambda: date(2000, 1, 1)).write_sync([batch_of(old + young)])[0]
    time.sleep(1.0)
    assert counts(store) == (35, 35)
    assert store.query(f"SELECT countIf(retain_until <= today()) FROM {ORDERS}") == [(20,)]
    store.command(f"SYSTEM START TTL MERGES {ORDERS}")
    store.command(f"OPTIMIZE TABLE {ORDERS} FINAL")
    assert counts(store) == (15, 15)
    # and today's sink does not insert them again
    result = handler(store).write_sync([batch_of(old, start=100)])[0]
    assert (result.inserted, result.suppressed) == (0, 20)


def test_a_shortened_retention_applies_to_stored_rows(store: ChdbStore) -> None:
    old = rows(10, at=datetime.now(UTC) - timedelta(days=100))
    young = rows(5, at=datetime.now(UTC) - timedelta(days=10))
    handler(store).write_sync([batch_of(old + young)])[0]
    shorter = partner_tables(PARTNER, [agreement(retention_days=30)])
    ensure_partner(store, shorter)  # the mutation recomputes the TTL: expired rows go at once
    assert counts(store) == (5, 5)
    assert store.query(f"SELECT countIf(retain_until = toDate(occurred_at) + 30) FROM {ORDERS}") == [(5,)]
    assert "[30], 30)" in store.query(
        f"SELECT default_expression FROM system.columns WHERE database = '{TABLES.database}' "
        "AND name = 'retain_until'")[0][0]


def test_erasure_deletes_then_guards_and_is_idempotent(store: ChdbStore) -> None:
    subject, other = "e" * 64, "f" * 64
    t0 = datetime.now(UTC) - timedelta(hours=1)
    mine = rows(6, at=t0 - timedelta(minutes=5), subject=subject)
    later = rows(2, at=t0 + timedelta(minutes=5), subject=subject)  # after the withdrawal: kept
    research = rows(2, at=t0 - timedelta(minutes=5), subject=subject, purpose="marketing")  # other purpose
    elsewhere = rows(2, at=t0 - timedelta(minutes=5), subject=subject, venue="chaillot")
    others = rows(3, at=t0 - timedelta(minutes=5), subject=other)
    h = handler(store)
    h.write_sync([batch_of(mine + later + research + elsewhere + others)])[0]
    published: list[tuple[bytes, bytes]] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append((key, value))

    eraser = EraseHandler(store, TABLES, h.tombstones, publish, topic=f"partner.{PARTNER}.erasure")
    value = erasure_value(PARTNER, subject, purposes=["cross_venue_analytics"], occurred_at=t0)
    command = parse_command(value, PARTNER)
    assert asyncio.run(eraser.execute(command)) == 1
    assert counts(store) == (9, 9)
    assert store.query(f"SELECT count() FROM {ORDERS} WHERE subject_pseudonym = '{subject}'") == [(6,)]
    assert len(published) == 1 and b'"rows_deleted": 6' in published[0][1]
    assert asyncio.run(eraser.execute(command)) == 0  # idempotent: nothing more, no second audit record
    assert len(published) == 1
    # an event of the erased period arriving after the command is not inserted
    late = rows(1, at=t0 - timedelta(minutes=30), subject=subject)
    assert h.write_sync([batch_of(late, start=50)])[0].suppressed == 1
    assert counts(store) == (9, 9)
    # masked at once, physically removed when the parts are rewritten
    assert store.query(f"SELECT count() FROM {ORDERS} SETTINGS apply_deleted_mask = 0") == [(15,)]
    store.command(f"ALTER TABLE {ORDERS} APPLY DELETED MASK")
    assert store.query(f"SELECT count() FROM {ORDERS} SETTINGS apply_deleted_mask = 0") == [(9,)]
    ((tomb,),) = store.query(f"SELECT rows_deleted FROM {TABLES.erasures.qualified}")
    assert tomb == 6
    assert micros(t0) == command.occurred_at_us


def test_a_burst_of_erasures_runs_as_one_delete_per_table_with_per_command_counts(store: ChdbStore) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=1)
    subjects = [c * 64 for c in "abcd"]
    h = handler(store)
    h.write_sync([batch_of([r for i, s in enumerate(subjects) for r in rows(i + 1, at=t0 - timedelta(minutes=5),
                                                                             subject=s)])])
    published: list[bytes] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append(value)

    eraser = EraseHandler(store, TABLES, h.tombstones, publish, topic=f"partner.{PARTNER}.erasure")
    first = parse_command(erasure_value(PARTNER, subjects[0], occurred_at=t0), PARTNER)
    assert asyncio.run(eraser.execute(first)) == 1  # executed alone, before the burst
    burst = [parse_command(erasure_value(PARTNER, s, occurred_at=t0), PARTNER) for s in subjects[1:3]]
    overlapping = parse_command(erasure_value(PARTNER, subjects[2], occurred_at=t0), PARTNER)  # same rows again
    mutations = store.query("SELECT count() FROM system.mutations")[0][0]
    assert asyncio.run(eraser.execute_many([first, *burst, overlapping, burst[0]])) == [0, 1, 1, 1, 0]
    assert store.query("SELECT count() FROM system.mutations")[0][0] - mutations == 1, "one DELETE for the burst"
    assert store.query(f"SELECT subject_pseudonym, count() FROM {ORDERS} GROUP BY 1") == [(subjects[3], 4)]
    deleted = {json.loads(v)["event_id"]: json.loads(v)["rows_deleted"] for v in published}
    # each command audited once; a row two commands cover counts for the first of them
    assert deleted == {first.command_id: 1, burst[0].command_id: 2, burst[1].command_id: 3,
                       overlapping.command_id: 0}
    assert store.query(f"SELECT count(), uniqExact(command_id) FROM {TABLES.erasures.qualified}") == [(4, 4)]


def test_audit_lines_of_one_message_stay_distinct_rows_through_merges(store: ChdbStore) -> None:
    """Two decisions of one message for the same partner at the same instant (two agreements)
    share every key column but ``kafka_line``: a merge must not collapse them."""
    old_key = audit.SPEC.order_by[:-1]
    legacy = dataclasses.replace(audit.SPEC, columns=audit.SPEC.columns[:-1], order_by=old_key)
    store.command(f"DROP TABLE IF EXISTS {audit.SPEC.qualified} SYNC")
    ensure_table(store, legacy)  # a store created before kafka_line existed
    ensure_table(store, audit.SPEC)  # its sink restarts with this version
    ((key,),) = store.query("SELECT sorting_key FROM system.tables WHERE database = 'audit' AND name = 'decisions'")
    assert key.endswith("kafka_offset, kafka_line")
    line = {"event_id": "e1", "venue_id": "v1", "event_type": "ticket.order_placed", "outcome": "shared",
            "reason": "granted", "partner": "p1", "purpose": "cross_venue_analytics",
            "decided_at": "2026-11-29T10:00:00+00:00"}
    value = b"\n".join(json.dumps({**line, "agreement_id": a}).encode() for a in ("dsa-1", "dsa-2"))
    batch: Batch[list[Any]] = Batch(AUDIT, 0, max_messages=2, max_age_s=1.0)
    h = audit.AuditHandler(store, topic=AUDIT, batch_rows=10, batch_seconds=1.0)
    batch.add(0, h.decode(value), now=0.0)
    assert h.write_sync([batch])[0].inserted == 2
    batch2: Batch[list[Any]] = Batch(AUDIT, 0, max_messages=2, max_age_s=1.0)
    batch2.add(1, h.decode(value), now=0.0)  # a second part, so that OPTIMIZE merges two parts
    h.write_sync([batch2])
    store.command(f"OPTIMIZE TABLE {audit.SPEC.qualified} FINAL")
    assert store.query(f"SELECT kafka_offset, kafka_line, agreement_id FROM {audit.SPEC.qualified} "
                       "ORDER BY ALL") == [(0, 0, "dsa-1"), (0, 1, "dsa-2"), (1, 0, "dsa-1"), (1, 1, "dsa-2")]


def test_data_survives_close_and_reopen(store_dir: Path) -> None:
    with ChdbStore(store_dir) as first:
        ensure_partner(first, TABLES)
        first.command(f"TRUNCATE TABLE {ORDERS}")
        handler(first).write_sync([batch_of(rows(20))])[0]
    with ChdbStore(store_dir) as second:
        assert counts(second) == (20, 20)


def test_runner_reads_open_and_close_the_stores(tmp_path: Path) -> None:
    write_agreement(tmp_path / "agreements", PARTNER)
    settings = Settings.model_validate({"data_dir": tmp_path, "agreements_dir": tmp_path / "agreements"})
    with pytest.raises(StoreMissing, match=f"no store for {PARTNER!r}"):  # a read never creates a store
        partner_counts(settings, PARTNER)
    assert not settings.partner_store_dir(PARTNER).exists()
    with open_store(settings, PARTNER) as store:
        assert store.path == tmp_path / "partners" / PARTNER
        h = OrdersHandler(store, partner_tables(PARTNER, [agreement()]), Tombstones(store, TABLES), topic=TOPIC,
                          batch_rows=10, batch_seconds=1)
        h.write_sync([batch_of(rows(7))])[0]
    assert partner_counts(settings, PARTNER) == {"rows": 7, "distinct_event_ids": 7}
    assert partner_rows(settings, PARTNER, "SELECT count() FROM ticket_orders") == [(7,)]
    assert "7" in query_store(settings, PARTNER, "SELECT count() FROM ticket_orders")
    with pytest.raises(StoreMissing, match="no store for 'audit'"):
        audit_rows(settings, "SELECT count() FROM decisions")
    assert not (tmp_path / "audit").exists()
    open_audit_store(settings).close()  # what the audit sink does at start
    assert audit_rows(settings, "SELECT count() FROM decisions") == [(0,)]


def test_store_errors_are_store_unavailable(store: ChdbStore) -> None:
    with pytest.raises(StoreUnavailable):
        store.query("SELECT no_such_column FROM system.one")
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.query("SELECT 1")


def test_ten_thousand_rows(store: ChdbStore) -> None:
    batch = batch_of(rows(10_000))
    assert batch.ready(0.0)
    assert handler(store).write_sync([batch])[0].inserted == 10_000
    assert handler(store).write_sync([batch])[0].duplicates == 10_000
    assert counts(store) == (10_000, 10_000)


def test_a_second_directory_in_the_same_process_is_store_locked(store: ChdbStore, tmp_path: Path) -> None:
    with pytest.raises(StoreLocked, match="one store directory per process"):
        ChdbStore(tmp_path / "other")
    assert store.query("SELECT 1") == [(1,)]  # the open store is unharmed


HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sinks.chdb import ChdbStore
    with ChdbStore(Path(sys.argv[1])):
        print("ready", flush=True)
        sys.stdin.readline()
    """
)

TRY_OPEN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sinks.chdb import ChdbStore
    from core.errors import StoreLocked
    try:
        ChdbStore(Path(sys.argv[1])).close()
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
            ChdbStore(path)
    finally:
        holder.communicate("\n", timeout=60)
    with ChdbStore(path) as store:  # released when the holder exits
        assert store.query("SELECT 1") == [(1,)]



def test_a_starting_sink_waits_for_a_reader_to_release_its_store(tmp_path: Path) -> None:
    """A reader that found no sink running holds the directory for one query: the sink starting
    meanwhile waits for it instead of dying on the lock; a holder that stays is StoreLocked."""
    from sinks.runner import open_embedded

    path = tmp_path / "shared"
    holder = python(HOLD, path, stdin=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    try:
        with pytest.raises(StoreLocked, match=f"PID {holder.pid}"):
            open_embedded(path, wait_s=0.5)  # still held past the wait
        release = threading.Timer(1.5, lambda: holder.communicate("\n", timeout=60))
        release.start()
        started = time.monotonic()
        with open_embedded(path, wait_s=30) as store:
            assert time.monotonic() - started >= 1.0  # it did wait for the holder
            assert store.query("SELECT 1") == [(1,)]
        release.join()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
