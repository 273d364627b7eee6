"""``techne import csv``: a venue's ticketing export in, canonical events on its raw topic out.

Each row becomes one event through its profile (csv_profiles.py), then goes through the same
validation, encoding and producer as a webhook (:func:`producers.ingest.prepare`, the one
:class:`EventProducer`). A bad row never aborts the file: it is reported with its line number
(the physical line in the file, header = line 1), the column and the reason, and the rest goes on.

Idempotent: a row's ``event_id`` is uuid5 of venue + event type + the profile's ``id_columns``,
and the ids acknowledged by Kafka are kept in ``<data_dir>/imports/<venue>.sqlite``: importing
the same file again sends nothing (``already_imported``). Imported from another machine, the same
ids make the partner tables keep each event once.

Kafka must be reachable (the import stops with an error otherwise; running it again resumes:
what was acknowledged is skipped). Records are written ``batch`` at a time, each batch waiting
for every acknowledgement before its ids are recorded.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, TechneError
from core.settings import Settings
from producers.csv_profiles import Profile, build_event, decode
from producers.ingest import EventRejected, Prepared, derived_event_id, prepare
from producers.kafka import EventProducer, ProduceFailed

AUTH = "csv-import"


@dataclass
class RowError:
    line: int
    column: str
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    sent: int = 0
    already_imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({e.line for e in self.errors})

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "sent": self.sent, "already_imported": self.already_imported,
                "rejected": self.rejected_rows}


class ImportLedger:
    """Event ids of one venue already acknowledged by Kafka through an import."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS imported (event_id TEXT PRIMARY KEY) WITHOUT ROWID")

    def known(self, event_ids: list[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(event_ids), 500):
            chunk = event_ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(r[0] for r in self._db.execute(f"SELECT event_id FROM imported WHERE event_id IN ({marks})",  # noqa: S608
                                                      chunk))
        return out

    def add(self, event_ids: list[str]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO imported VALUES (?)", [(e,) for e in event_ids])
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def read_rows(data: bytes, profile: Profile) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Header and ``(line number, row)`` pairs; :class:`ConfigError` if a profile column is missing."""
    reader = csv.reader(io.StringIO(decode(data, profile.encoding), newline=""), delimiter=profile.delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ConfigError("the file is empty") from None
    missing = sorted(profile.columns - set(header))
    if missing:
        raise ConfigError(f"columns missing from the file for profile '{profile.name}': {', '.join(missing)}")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, dict(zip(header, cells, strict=False))
    return header, rows()


def prepare_rows(data: bytes, profile: Profile, venue_id: str, subject_key: bytes,
                 report: ImportReport) -> Iterator[Prepared]:
    """Valid rows as records; every bad row lands in ``report.errors`` (line, column, reason)."""
    _, rows = read_rows(data, profile)
    for line, row in rows:
        report.rows += 1
        payload, cell_errors = build_event(row, profile)
        ids = [row.get(c, "").strip() for c in profile.id_columns]
        if not all(ids):
            cell_errors.append((next(c for c, v in zip(profile.id_columns, ids, strict=True) if not v),
                                "empty id column"))
        if cell_errors:
            report.errors.extend(RowError(line, col, reason) for col, reason in cell_errors)
            continue
        try:
            yield prepare(payload, venue_id=venue_id, subject_key=subject_key, auth=AUTH,
                          fallback_id=derived_event_id(venue_id, "import", profile.event_type, *ids))
        except EventRejected as exc:
            report.errors.extend(RowError(line, profile.column_of(e["field"]), e["message"]) for e in exc.errors)


async def _send(producer: EventProducer, records: list[Prepared]) -> None:
    futures = [await producer.enqueue(r.topic, r.key, r.value, r.headers) for r in records]
    done, pending = await asyncio.wait(futures, timeout=producer.timeout * 3)
    if pending or any(f.exception() is not None for f in done):
        raise ProduceFailed(f"Kafka did not acknowledge {len(pending)} of {len(records)} records")


async def run_import(settings: Settings, data: bytes, venue_id: str, profile: Profile, *, dry_run: bool = False,
                     batch: int = 500, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import ``data`` (the file's bytes) for ``venue_id``; ``progress(n)`` is told of each n rows done."""
    from core.venues import load_venues

    if venue_id not in load_venues(settings.venues_file):
        raise ConfigError(f"unknown venue '{venue_id}'")
    report = ImportReport()
    ledger = ImportLedger(settings.data_dir / "imports" / f"{venue_id}.sqlite")
    producer = EventProducer(settings.bootstrap, timeout=settings.produce_timeout_s, auth=settings.kafka_auth(),
                             client_id="techne-import")
    if not dry_run:
        try:
            await producer.start()
        except Exception as exc:
            ledger.close()
            raise TechneError(f"Kafka unreachable at {settings.bootstrap}: {type(exc).__name__}") from exc
    try:
        pending: list[Prepared] = []
        rows_seen = 0

        async def flush() -> None:
            nonlocal rows_seen
            known = ledger.known([r.event_id for r in pending])
            fresh = [r for r in pending if r.event_id not in known]
            report.already_imported += len(pending) - len(fresh)
            if fresh and not dry_run:
                await _send(producer, fresh)
                ledger.add([r.event_id for r in fresh])
            report.sent += len(fresh)
            if progress is not None:
                progress(report.rows - rows_seen)
            rows_seen = report.rows
            pending.clear()

        for record in prepare_rows(data, profile, venue_id, settings.require_subject_key(), report):
            pending.append(record)
            if len(pending) >= batch:
                await flush()
        await flush()
        return report
    finally:
        if not dry_run:
            await producer.stop()
        ledger.close()


def write_error_report(errors: list[RowError], path: Path) -> None:
    """The row errors as a CSV (``;``-separated, UTF-8 with BOM: opens as-is in a French Excel)."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, delimiter=";")
        out.writerow(["ligne", "colonne", "raison"])
        out.writerows((e.line, e.column, e.reason) for e in errors)


def main(settings: Settings, path: Path, venue_id: str, profile_name: str, *, dry_run: bool = False,
         errors_out: Path | None = None, as_json: bool = False) -> ImportReport:
    """The ``techne import csv`` command: progress bar, summary, row-level error report."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from producers.csv_profiles import load_profile

    profile = load_profile(profile_name)
    data = path.read_bytes()
    total = max(0, sum(1 for _ in read_rows(data, profile)[1]))
    console = Console(stderr=as_json)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=as_json) as bar:
        task = bar.add_task(f"{path.name} → raw.{venue_id}", total=total)
        report = asyncio.run(run_import(settings, data, venue_id, profile, dry_run=dry_run,
                                        progress=lambda n: bar.advance(task, n)))
    if errors_out is not None:
        write_error_report(report.errors, errors_out)
    if as_json:
        print(json.dumps({**report.as_dict(), "errors": [e.__dict__ for e in report.errors[:1000]]},
                         ensure_ascii=False))
        return report
    verb = "would send" if dry_run else "sent"
    console.print(f"{report.rows} rows: {report.sent} {verb}, {report.already_imported} already imported, "
                  f"{report.rejected_rows} rejected")
    for e in report.errors[:50]:
        console.print(f"  line {e.line}, column '{e.column}': {e.reason}", markup=False, highlight=False)
    if len(report.errors) > 50:
        console.print(f"  … {len(report.errors) - 50} more" + (f" in {errors_out}" if errors_out else
                                                                " (--errors-out FILE for all of them)"))
    return report
