"""Logical backup and restore of the bus's ClickHouse stores: every partner store, every venue's
own store and the audit store.

A backup is a directory: ``manifest.json`` plus one gzip'd JSON-lines file per table (one row a
line, as ``JSONCompactEachRow``). The manifest holds, per store and table, the ``CREATE TABLE``
statement, the column names, the row count and a checksum ``sum(cityHash64(*))`` computed by the
engine over every column of every row (order-independent); and each view's ``CREATE`` statement,
replayed after the rows. :func:`restore` creates the
databases and tables from the manifest in an **empty** target, inserts the rows, recomputes
count and checksum there and raises :class:`BackupMismatch` unless both match the manifest.

The same code runs on both kinds of store, through :class:`sinks.base.Store`: the embedded chDB
directories under ``settings.data_dir`` (exclusive to one process: stop the sinks first,
otherwise :class:`~core.errors.StoreLocked` says who holds the store), or the ClickHouse server
of ``settings.clickhouse_url``. Rows are read whole per table: sized for the embedded stores
and modest servers; a large server is backed up with ClickHouse's own ``BACKUP`` (see
deploy/backup.sh and deploy/README.md). The consent ledger lives in Kafka (the worker's table
changelog), not here: :mod:`techne.ledger_backup` backs it up.
"""

from __future__ import annotations

import gzip
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError, StoreMissing, StoreUnavailable, TechneError
from core.settings import Settings
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from sinks.base import Store
from sinks.ddl import quote
from sinks.reader import StoreRef
from sinks.runner import audit_ref, partner_ref
from sinks.tables import VENUE_STORE

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
INSERT_ROWS = 50_000


class BackupMismatch(TechneError):
    """A restored table does not hold what the backup recorded (row count or checksum)."""


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str


def store_refs(settings: Settings) -> list[StoreRef]:
    """Every store of the bus: one per partner of the agreements, each venue's own store (its
    events of every kind, kept 3 years: the SIBIL declarations read it), then the audit store."""
    known = partners(load_agreements(settings.agreements_dir))
    venues = sorted(load_venues(settings.venues_file))
    return [*(partner_ref(settings, p) for p in known), *(partner_ref(settings, f"{VENUE_STORE}{v}") for v in venues),
            audit_ref(settings)]


@contextmanager
def _open(settings: Settings, ref: StoreRef, *, create: bool) -> Iterator[Store | None]:
    """The store of ``ref`` (server or embedded); None for an embedded store that does not exist
    and is not to be created."""
    if settings.clickhouse_url:
        from sinks.server import connect

        password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else ""
        store: Store = connect(settings.clickhouse_url, username=settings.clickhouse_user, password=password)
    else:
        from sinks.chdb import ChdbStore

        if not create and not ref.store_dir.exists():
            yield None
            return
        ref.store_dir.mkdir(parents=True, exist_ok=True)
        store = ChdbStore(ref.store_dir)
    try:
        yield store
    finally:
        store.close()


def _tables(store: Store, database: str) -> list[str]:
    rows = store.query("SELECT name FROM system.tables WHERE database = {d:String} AND NOT is_temporary "
                       "AND engine LIKE '%MergeTree' ORDER BY name", {"d": database})
    return [str(r[0]) for r in rows]


def _views(store: Store, database: str) -> list[tuple[str, str]]:
    """``(name, CREATE statement)`` of the database's views, recreated after the tables' rows."""
    rows = store.query("SELECT name, create_table_query FROM system.tables WHERE database = {d:String} "
                       "AND engine IN ('View', 'MaterializedView') ORDER BY name", {"d": database})
    return [(str(name), str(ddl)) for name, ddl in rows]


def table_state(store: Store, qualified: str) -> TableState:
    """Row count and ``sum(cityHash64(*))`` of a table, computed by the engine."""
    ((rows, checksum),) = store.query(f"SELECT count(), toString(sum(cityHash64(*))) FROM {qualified}")  # noqa: S608
    return TableState(int(rows), str(checksum))


def backup(settings: Settings, out: Path) -> dict[str, Any]:
    """Write a backup of every store into the new directory ``out``; returns its manifest. An
    embedded data directory that does not exist is refused (a wrong ``--data-dir`` is not an
    empty backup)."""
    if not settings.clickhouse_url and not settings.data_dir.is_dir():
        raise StoreMissing(f"data directory {settings.data_dir} does not exist (check --data-dir): nothing backed up")
    out.mkdir(parents=True, exist_ok=False, mode=0o700)  # the stores' rows (pseudonymized): owner only
    manifest: dict[str, Any] = {"format": FORMAT_VERSION, "created_at": datetime.now(UTC).isoformat(),
                                "server": bool(settings.clickhouse_url), "stores": []}
    for ref in store_refs(settings):
        with _open(settings, ref, create=False) as store:
            if store is None:
                continue  # an embedded store never written: nothing to keep
            entry: dict[str, Any] = {"name": ref.name, "database": ref.database, "tables": [],
                                     "views": [{"name": n, "ddl": d} for n, d in _views(store, ref.database)]}
            for table in _tables(store, ref.database):
                qualified = f"{quote(ref.database)}.{quote(table)}"
                ((ddl,),) = store.query(f"SHOW CREATE TABLE {qualified}")
                columns = [str(r[0]) for r in store.query(
                    "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String} "
                    "ORDER BY position", {"d": ref.database, "t": table})]
                before = table_state(store, qualified)
                rows = store.query(f"SELECT {', '.join(quote(c) for c in columns)} FROM {qualified}")  # noqa: S608
                after = table_state(store, qualified)
                if before != after:
                    raise ConfigError(f"{ref.name}.{table} changed during the backup: stop its sink and retry")
                name = f"{ref.database}.{table}.jsonl.gz"
                with gzip.open(out / name, "wt", encoding="utf-8") as f:
                    for row in rows:
                        f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                entry["tables"].append({"name": table, "ddl": ddl, "columns": columns, "file": name,
                                        "rows": before.rows, "checksum": before.checksum})
            manifest["stores"].append(entry)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def _create_views(store: Store, views: list[dict[str, str]]) -> None:
    """Create views after the rows (a materialized view would copy them again), in as many passes
    as their dependencies on each other need."""
    pending = list(views)
    while pending:
        failed: list[dict[str, str]] = []
        error: StoreUnavailable | None = None
        for view in pending:
            try:
                store.command(view["ddl"])
            except StoreUnavailable as exc:  # depends on a view not created yet
                failed.append(view)
                error = exc
        if len(failed) == len(pending):
            raise ConfigError(f"cannot recreate views {[v['name'] for v in failed]}: {error}")
        pending = failed


def _chunks(path: Path) -> Iterator[bytes]:
    lines: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            lines.append(line)
            if len(lines) >= INSERT_ROWS:
                yield "".join(lines).encode()
                lines = []
    if lines:
        yield "".join(lines).encode()


def restore(settings: Settings, source: Path) -> dict[str, dict[str, TableState]]:
    """Restore the backup in ``source`` into the (empty) stores of ``settings``; returns each
    table's state after the restore, verified against the manifest (see module doc)."""
    if not (source / MANIFEST).is_file():
        raise ConfigError(f"no backup in {source}: {MANIFEST} is missing "
                          "(a directory written by `techne backup create`)")
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{source / MANIFEST}: not a manifest written by `techne backup create` "
                          f"({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or "stores" not in manifest:
        raise ConfigError(f"{source / MANIFEST}: not a manifest written by `techne backup create`")
    if manifest.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{source}: backup format {manifest.get('format')} is not {FORMAT_VERSION}")
    refs = {ref.name: ref for ref in store_refs(settings)}
    restored: dict[str, dict[str, TableState]] = {}
    for entry in manifest["stores"]:
        ref = refs.get(entry["name"])
        if ref is None:
            raise ConfigError(f"the backup holds store {entry['name']!r}, which the agreements do not name")
        with _open(settings, ref, create=True) as store:
            assert store is not None
            existing = set(_tables(store, ref.database))
            for table in entry["tables"]:
                qualified = f"{quote(ref.database)}.{quote(table['name'])}"
                if table["name"] in existing and table_state(store, qualified).rows:
                    raise ConfigError(f"{ref.name}.{table['name']} already holds rows: restore into empty stores")
            store.command(f"CREATE DATABASE IF NOT EXISTS {quote(ref.database)}")
            states: dict[str, TableState] = {}
            for table in entry["tables"]:
                qualified = f"{quote(ref.database)}.{quote(table['name'])}"
                if table["name"] not in existing:
                    store.command(table["ddl"])
                run = secrets.token_hex(8)
                for n, chunk in enumerate(_chunks(source / table["file"])):
                    store.insert(qualified, table["columns"], chunk, "JSONCompactEachRow", f"restore-{run}-{n}")
                state = table_state(store, qualified)
                expected = TableState(int(table["rows"]), str(table["checksum"]))
                if state != expected:
                    raise BackupMismatch(f"{ref.name}.{table['name']}: restored {state}, backup recorded {expected}")
                states[table["name"]] = state
            have = {name for name, _ in _views(store, ref.database)}
            _create_views(store, [v for v in entry.get("views", []) if v["name"] not in have])
            restored[ref.name] = states
    return restored
