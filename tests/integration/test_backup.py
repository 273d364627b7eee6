"""`techne backup create` then `techne backup restore` into a new data directory: every partner
store, a venue's own store and the audit store come back with the same row counts and checksums.

The stores are the real ones (the sinks' DDL through chDB, ``ensure_partner`` / audit ``SPEC``),
filled with rows computed from each column's type: non-ASCII text with quotes, tabs, newlines
and backslashes, NULLs in every Nullable column, microsecond timestamps, 64-bit integers above
2^53, arrays. The checksum (``sum(cityHash64(*))``) is recomputed by the engine on both sides.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from sinks import audit
from sinks.chdb import ChdbStore
from sinks.ddl import quote
from sinks.migrate import ensure_partner, ensure_table
from sinks.runner import audit_store_dir, store_dir, tables_for
from techne.backup import BackupMismatch, restore, table_state
from techne.cli import app

pytestmark = pytest.mark.integration
ROWS = 500
VENUE = "venue:gemeaux"


def value_sql(ch_type: str) -> str:
    """A SQL expression of ``number`` (from numbers()) producing a value of ``ch_type``."""
    inner = re.fullmatch(r"(LowCardinality|Nullable|Array)\((.*)\)", ch_type)
    if inner:
        kind, arg = inner.groups()
        if kind == "LowCardinality":
            return value_sql(arg)
        if kind == "Nullable":
            return f"if(number % 4 = 0, NULL, {value_sql(arg)})"
        return f"[{value_sql(arg)}, {value_sql(arg)}]"
    if ch_type == "String":
        return "concat('Opéra « Lyon » \\'q\\' \"d\"\\t\\\\ \\n🎭 ', toString(number % 37))"
    if ch_type == "UUID":
        return "reinterpretAsUUID(reverse(unhex(hex(cityHash64(number, 1)) || hex(cityHash64(number, 2)))))"
    if ch_type.startswith("DateTime64"):
        return "now64(6, 'UTC') - toIntervalMicrosecond(number * 1234567)"
    if ch_type in {"Date", "Date32"}:
        return f"to{ch_type}(today() + 400 + number % 30)"
    if ch_type.startswith("DateTime"):
        return "now() - toIntervalSecond(number * 37)"
    if ch_type in {"Float32", "Float64"}:
        return f"to{ch_type}(number / 7)"  # not exactly representable: round trip or broken
    if ch_type == "Bool":
        return "number % 2 = 0"
    if re.fullmatch(r"U?Int(8|16|32)", ch_type):
        return f"to{ch_type}(number % 100)"
    if re.fullmatch(r"U?Int64", ch_type):
        return f"to{ch_type}(9007199254740993 + number * 1000003)"  # above 2^53: exact or broken
    raise AssertionError(f"no generator for {ch_type}")


def fill(store: ChdbStore, database: str) -> dict[str, int]:
    counts = {}
    for (table,) in store.query("SELECT name FROM system.tables WHERE database = {d:String} "
                                "AND engine LIKE '%MergeTree'", {"d": database}):
        columns = store.query("SELECT name, type FROM system.columns WHERE database = {d:String} "
                              "AND table = {t:String} ORDER BY position", {"d": database, "t": table})
        names = ", ".join(quote(n) for n, _ in columns)
        values = ", ".join(value_sql(t) for _, t in columns)
        store.command(f"INSERT INTO {quote(database)}.{quote(table)} ({names}) "  # noqa: S608
                      f"SELECT {values} FROM numbers({ROWS})")
        counts[table] = ROWS
    return counts


@pytest.fixture
def source(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "source")
    for partner in ("observatoire", "reseau-danse"):
        tables = tables_for(settings, partner)
        with ChdbStore(settings.partner_store_dir(partner)) as store:
            ensure_partner(store, tables)
            assert fill(store, tables.database)
    tables = tables_for(settings, VENUE)  # a venue's own store: 3 years of its events (SIBIL reads it)
    with ChdbStore(store_dir(settings, VENUE)) as store:
        ensure_partner(store, tables)
        assert fill(store, tables.database)
    with ChdbStore(audit_store_dir(settings)) as store:
        ensure_table(store, audit.SPEC)
        assert fill(store, audit.DATABASE) == {"decisions": ROWS}
    return settings


def _states(settings: Settings) -> dict[str, tuple[int, str]]:
    states = {}
    stores = [(p, store_dir(settings, p)) for p in ("observatoire", "reseau-danse", VENUE)]
    for name, directory in [*stores, ("audit", audit_store_dir(settings))]:
        with ChdbStore(directory) as store:
            for (database, table) in store.query("SELECT database, name FROM system.tables WHERE engine "
                                                 "LIKE '%MergeTree' AND database NOT IN ('system')"):
                state = table_state(store, f"{quote(database)}.{quote(table)}")
                states[f"{name}/{table}"] = (state.rows, state.checksum)
    return states


def test_backup_restores_every_store_with_equal_counts_and_checksums(source: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "backup"
    created = runner.invoke(app, ["backup", "create", str(out), "--data-dir", str(source.data_dir)])
    assert created.exit_code == 0, created.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(s["name"] for s in manifest["stores"]) == ["audit", "observatoire", "reseau-danse", VENUE]
    assert {t["name"] for s in manifest["stores"] for t in s["tables"]} >= {"ticket_orders", "erasures", "decisions"}

    target = tmp_path / "restored"
    restored = runner.invoke(app, ["backup", "restore", str(out), "--data-dir", str(target)])
    assert restored.exit_code == 0, restored.output
    before, after = _states(source), _states(Settings(data_dir=target))
    assert before == after
    assert all(rows == ROWS for rows, _ in before.values()), before
    assert len(before) >= 5 and any(k.startswith(f"{VENUE}/") for k in before), before
    views = {s["name"]: {v["name"] for v in s["views"]} for s in manifest["stores"]}
    assert views["observatoire"], "the partner store's views are in the backup"
    with ChdbStore(Settings(data_dir=target).partner_store_dir("observatoire")) as store:
        restored_views = {n for (n,) in store.query("SELECT name FROM system.tables WHERE database = 'observatoire' "
                                                    "AND engine = 'View'")}
        assert restored_views == views["observatoire"]
        assert store.query("SELECT count() FROM observatoire.ticket_orders_current")[0][0] > 0

    again = runner.invoke(app, ["backup", "restore", str(out), "--data-dir", str(target)])
    assert again.exit_code == 1 and "already holds rows" in again.output


def test_restore_refuses_a_backup_whose_rows_changed(source: Settings, tmp_path: Path) -> None:
    from techne.backup import backup

    out = tmp_path / "backup"
    backup(source, out)
    manifest = json.loads((out / "manifest.json").read_text())
    audit_entry = next(s for s in manifest["stores"] if s["name"] == "audit")
    audit_entry["tables"][0]["checksum"] = "12345"  # a damaged or tampered backup
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupMismatch, match=r"audit\.decisions"):
        restore(Settings(data_dir=tmp_path / "restored"), out)
