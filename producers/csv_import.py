"""``techne import csv``: a venue's ticketing export in, canonical events on its raw topic out.

The file (CSV in any usual dialect and encoding, or XLSX) is read by
:func:`producers.spreadsheet.read_table`; :func:`check_columns` names the real cause when a
profile's columns are missing (delimiter, encoding, a column renamed). Each row becomes one
event through its profile (csv_profiles.py), then goes through the same validation, encoding
and producer as a webhook (:func:`producers.ingest.prepare`, the one :class:`EventProducer`).
A bad row never aborts the file: it is reported with its line number (the physical line in the
file, header = line 1), the column and the reason in French and English (:class:`RowError`),
and the rest goes on. :func:`validate_rows` is the same check without Kafka (the console's
upload page uses it).

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
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, Unavailable
from core.settings import Settings
from producers.csv_profiles import Profile, build_event
from producers.ingest import EventRejected, Prepared, configure, derived_event_id, prepare
from producers.kafka import EventProducer
from producers.row_messages import french
from producers.spreadsheet import Table, TableError, delimiter_name, read_table

AUTH = "csv-import"


@dataclass
class RowError:
    """One refused cell or row: ``reason`` in English, ``reason_fr`` in French (no cell value)."""

    line: int
    column: str
    reason: str
    reason_fr: str = ""

    def message(self, lang: str = "fr") -> str:
        return self.reason if lang == "en" else (self.reason_fr or self.reason)


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


def read_profile_table(data: bytes, filename: str, profile: Profile) -> Table:
    """The file as a table read for ``profile`` (its encoding and delimiter as hints), its
    columns checked (:func:`check_columns`); :class:`TableError` otherwise."""
    forced = None if profile.encoding == "auto" else profile.encoding
    table = read_table(data, filename, expected=profile.columns, encoding=forced or "auto")
    check_columns(table, profile)
    return table


def check_columns(table: Table, profile: Profile) -> None:
    """Raise :class:`TableError` naming the likely cause if a column of ``profile`` is missing;
    note a delimiter other than the profile's when every column was found anyway."""
    import difflib

    missing = sorted(profile.columns - set(table.header))
    other_delimiter = table.format == "csv" and table.delimiter != profile.delimiter
    if not missing:
        if other_delimiter:
            table.notes.append((f"séparateur détecté : {delimiter_name(table.delimiter)} ; le profil attend "
                                f"{delimiter_name(profile.delimiter)} (fichier lu quand même)",
                                f"delimiter detected: {delimiter_name(table.delimiter, 'en')}; the profile expects "
                                f"{delimiter_name(profile.delimiter, 'en')} (file read anyway)"))
        return
    causes_fr, causes_en = [], []
    if other_delimiter:
        causes_fr.append(f"séparateur détecté : {delimiter_name(table.delimiter)} ; attendu "
                         f"{delimiter_name(profile.delimiter)}")
        causes_en.append(f"delimiter detected: {delimiter_name(table.delimiter, 'en')}; expected "
                         f"{delimiter_name(profile.delimiter, 'en')}")
    if len(table.header) == 1 and len(profile.columns) > 1:
        causes_fr.append("une seule colonne lue : le séparateur du fichier n'a pas été reconnu")
        causes_en.append("a single column was read: the file's delimiter was not recognised")
    if any("Ã" in h or "\ufffd" in h for h in table.header):
        causes_fr.append(f"en-tête mal décodé (encodage détecté : {table.encoding}) : enregistrez le fichier en UTF-8")
        causes_en.append(f"header badly decoded (encoding detected: {table.encoding}): save the file as UTF-8")
    for column in missing:
        close = difflib.get_close_matches(column, table.header, n=1, cutoff=0.6)
        if close:
            causes_fr.append(f"« {close[0]} » est-elle la colonne « {column} » ?")
            causes_en.append(f"is '{close[0]}' the column '{column}'?")
    header = " | ".join(table.header[:20]) + (" | …" if len(table.header) > 20 else "")
    raise TableError(
        f"colonnes manquantes pour le profil « {profile.name} » : {', '.join(missing)}"
        + "".join(f" ; {c}" for c in causes_fr) + f" (en-tête lu : {header} ; {table.describe()})",
        f"columns missing from the file for profile '{profile.name}': {', '.join(missing)}"
        + "".join(f"; {c}" for c in causes_en) + f" (header read: {header}; {table.describe('en')})")


def validate_rows(table: Table, profile: Profile, venue_id: str, subject_key: bytes,
                  report: ImportReport | None = None) -> tuple[list[Prepared], ImportReport]:
    """Every row checked like an import would (nothing sent): the valid records and the report
    (``report.errors``: line, column, French and English reason)."""
    report = report if report is not None else ImportReport()
    return list(prepare_rows(table, profile, venue_id, subject_key, report)), report


def prepare_rows(table: Table, profile: Profile, venue_id: str, subject_key: bytes,
                 report: ImportReport) -> Iterator[Prepared]:
    """Valid rows as records; every bad row lands in ``report.errors`` (line, column, reasons)."""
    too_wide = dict(table.width_errors)
    for line, row in table.rows:
        report.rows += 1
        if line in too_wide:
            report.errors.append(RowError(
                line, "(ligne)", f"{too_wide[line]} cells for {len(table.header)} columns (a delimiter inside an "
                "unquoted value?)", f"{too_wide[line]} cellules pour {len(table.header)} colonnes (un séparateur "
                "dans une valeur sans guillemets ?)"))
            continue
        payload, cell_errors = build_event(row, profile)
        errors = [RowError(line, col, e.en, e.fr) for col, e in cell_errors]
        ids = [row.get(c, "").strip() for c in profile.id_columns]
        if not all(ids):
            empty = next(c for c, v in zip(profile.id_columns, ids, strict=True) if not v)
            errors.append(RowError(line, empty, "empty id column", "identifiant vide"))
        if errors:
            report.errors.extend(errors)
            continue
        try:
            yield prepare(payload, venue_id=venue_id, subject_key=subject_key, auth=AUTH,
                          fallback_id=derived_event_id(venue_id, "import", profile.event_type, *ids))
        except EventRejected as exc:
            report.errors.extend(RowError(line, profile.column_of(e["field"]), e["message"], french(e["message"]))
                                 for e in exc.errors)


async def run_import(settings: Settings, table: Table, venue_id: str, profile: Profile, *, dry_run: bool = False,
                     batch: int = 500, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import ``table`` (:func:`read_profile_table`) for ``venue_id``; ``progress(n)`` is told of each n rows done."""
    from core.venues import load_venues

    if venue_id not in load_venues(settings.venues_file):
        raise ConfigError(f"unknown venue '{venue_id}'")
    configure(settings)
    report = ImportReport()
    ledger = ImportLedger(settings.data_dir / "imports" / f"{venue_id}.sqlite")
    producer = EventProducer(settings.bootstrap, timeout=settings.produce_timeout_s, auth=settings.kafka_auth(),
                             client_id="techne-import")
    if not dry_run:
        try:
            await producer.start()
        except Exception as exc:
            ledger.close()
            raise Unavailable(f"Kafka unreachable at {settings.bootstrap}: {type(exc).__name__}") from exc
    try:
        pending: list[Prepared] = []
        rows_seen = 0

        async def flush() -> None:
            nonlocal rows_seen
            known = ledger.known([r.event_id for r in pending])
            fresh = [r for r in pending if r.event_id not in known]
            report.already_imported += len(pending) - len(fresh)
            if fresh and not dry_run:
                await producer.send_batch(fresh)
                ledger.add([r.event_id for r in fresh])
            report.sent += len(fresh)
            if progress is not None:
                progress(report.rows - rows_seen)
            rows_seen = report.rows
            pending.clear()

        for record in prepare_rows(table, profile, venue_id, settings.require_subject_key(), report):
            pending.append(record)
            if len(pending) >= batch:
                await flush()
        await flush()
        return report
    finally:
        if not dry_run:
            await producer.stop()
        ledger.close()


def write_error_report(errors: list[RowError], path: Path, lang: str = "fr") -> None:
    """The row errors as a CSV (``;``-separated, UTF-8 with BOM: opens as-is in a French Excel)."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, delimiter=";")
        out.writerow(["line", "column", "reason"] if lang == "en" else ["ligne", "colonne", "raison"])
        out.writerows((e.line, e.column, e.message(lang)) for e in errors)


def main(settings: Settings, path: Path, venue_id: str, profile_name: str, *, dry_run: bool = False,
         errors_out: Path | None = None, as_json: bool = False, lang: str = "fr") -> ImportReport:
    """The ``techne import csv`` command: progress bar, summary, row-level error report."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from producers.csv_profiles import load_profile

    profile = load_profile(profile_name, settings.import_profiles_dir)
    table = read_profile_table(path.read_bytes(), path.name, profile)
    total = len(table.rows)
    console = Console(stderr=as_json)
    console.print(table.describe(lang), markup=False, highlight=False)
    for fr, en in table.notes:
        console.print(en if lang == "en" else fr, markup=False, highlight=False)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=as_json) as bar:
        task = bar.add_task(f"{path.name} → raw.{venue_id}", total=total)
        report = asyncio.run(run_import(settings, table, venue_id, profile, dry_run=dry_run,
                                        progress=lambda n: bar.advance(task, n)))
    if errors_out is not None:
        write_error_report(report.errors, errors_out, lang)
    if as_json:
        print(json.dumps({**report.as_dict(), "format": table.format, "encoding": table.encoding,
                          "delimiter": table.delimiter, "errors": [e.__dict__ for e in report.errors[:1000]]},
                         ensure_ascii=False))
        return report
    for line in summary_lines(report, dry_run, errors_out, lang):
        console.print(line, markup=False, highlight=False)
    return report


def summary_lines(report: ImportReport, dry_run: bool, errors_out: Path | None, lang: str) -> list[str]:
    """The human summary of an import, in French (default) or English."""
    if lang == "en":
        verb = "would send" if dry_run else "sent"
        lines = [f"{report.rows} rows: {report.sent} {verb}, {report.already_imported} already imported, "
                 f"{report.rejected_rows} rejected"]
        lines += [f"  line {e.line}, column '{e.column}': {e.reason}" for e in report.errors[:50]]
        more = f" in {errors_out}" if errors_out else " (--errors-out FILE for all of them)"
        return lines + ([f"  … {len(report.errors) - 50} more{more}"] if len(report.errors) > 50 else [])
    verb = "seraient envoyées" if dry_run else "envoyées"
    lines = [f"{report.rows} lignes : {report.sent} {verb}, {report.already_imported} déjà importées, "
             f"{report.rejected_rows} refusées"]
    lines += [f"  ligne {e.line}, colonne « {e.column} » : {e.message('fr')}" for e in report.errors[:50]]
    more = f" dans {errors_out}" if errors_out else " (--errors-out FICHIER pour toutes)"
    return lines + ([f"  … {len(report.errors) - 50} de plus{more}"] if len(report.errors) > 50 else [])
