"""The import page's files: keep an upload, read it as the bus will, send it with progress.

An upload lives in ``<data_dir>/console/uploads/<venue>/<id>/`` (``data``: the file's bytes;
``meta.json``: name, size, profile, who, when, and the send's result with its row errors, which
hold no cell value). The file holds personal data (e-mail addresses…), so it is kept only as long
as needed: deleted once sent, or :data:`KEEP_S` after its upload if never sent (never read after that; on disk
at most :data:`PURGE_EVERY_S` longer while the console runs); the result stays. ``<id>`` is 128 random
bits, and every function takes the venue: an upload is found only under its own venue's
directory, so one venue's file can never be reached from another venue's pages.

Reading and sending are the CSV import's own (:mod:`producers.csv_import`,
:mod:`producers.spreadsheet`): CSV in any usual dialect or XLSX, the same profiles, conversions,
French and English row errors, event ids and import ledger, so nothing differs from ``techne
import csv``; :func:`analyse` is a dry run (nothing leaves) that also says which rows the ledger already
holds (a re-upload sends nothing new). :class:`Sender` runs one send at a time per upload, in a
thread of its own, and exposes its progress.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, TechneError
from core.settings import Settings
from producers.csv_import import ImportLedger, ImportReport, RowError, read_profile_table, run_import, validate_rows
from producers.csv_profiles import Profile, build_event, load_profile
from producers.spreadsheet import Table, TableError

log = logging.getLogger(__name__)
ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
PREVIEW_ROWS = 10
ERRORS_KEPT = 10_000
"""Row errors of a send kept with the upload (line, column, reasons: no cell value)."""
KEEP_S = 24 * 3600.0
"""An uploaded file never sent is deleted this long after its upload."""
PURGE_EVERY_S = 600.0
"""How often the console deletes the files older than :data:`KEEP_S`, every venue's (and at start)."""


def profiles(settings: Settings) -> list[Profile]:
    """The import profiles of ``TECHNE_IMPORT_PROFILES_DIR``, as ``techne import csv`` reads them."""
    directory = settings.import_profiles_dir
    return [load_profile(p.stem, directory) for p in sorted(directory.glob("*.yaml"))]


def profile_named(settings: Settings, name: str) -> Profile:
    """One of :func:`profiles` by its name (:class:`ConfigError` otherwise): the name comes from a
    form, so it is never taken as a path."""
    known = {p.name: p for p in profiles(settings)}
    if name not in known:
        raise ConfigError(f"no import profile {name[:100]!r} (known: {', '.join(sorted(known))})")
    return known[name]


def _root(settings: Settings, venue: str) -> Path:
    return settings.data_dir / "console" / "uploads" / venue


def _dir(settings: Settings, venue: str, upload_id: str) -> Path | None:
    if not ID_RE.match(upload_id):
        return None
    path = _root(settings, venue) / upload_id
    return path if (path / "meta.json").is_file() else None


def save(settings: Settings, venue: str, filename: str, data: bytes, profile: str, user: str) -> str:
    """Keep an uploaded file for ``venue``; returns its id."""
    purge(settings, venue)
    upload_id = secrets.token_urlsafe(16)
    path = _root(settings, venue) / upload_id
    path.mkdir(parents=True, mode=0o700)
    fd = os.open(path / "data", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # personal data: owner only
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    meta = {"filename": Path(filename).name[:200] or "fichier", "size": len(data), "profile": profile,
            "user": user, "uploaded_at": time.time(), "result": None}
    (path / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))
    return upload_id


def meta(settings: Settings, venue: str, upload_id: str) -> dict[str, Any] | None:
    path = _dir(settings, venue, upload_id)
    return json.loads((path / "meta.json").read_text()) if path else None


def data(settings: Settings, venue: str, upload_id: str) -> bytes | None:
    """The file's bytes; ``None`` once deleted (sent, or older than :data:`KEEP_S`: deleted now if
    the periodic :func:`purge_all` has not come yet)."""
    path = _dir(settings, venue, upload_id)
    if path is None or not (path / "data").is_file():
        return None
    uploaded = json.loads((path / "meta.json").read_text()).get("uploaded_at", 0)
    if time.time() - float(uploaded) > KEEP_S:
        (path / "data").unlink(missing_ok=True)
        return None
    return (path / "data").read_bytes()


def forget(settings: Settings, venue: str, upload_id: str) -> None:
    """Delete the file itself (its result stays)."""
    path = _dir(settings, venue, upload_id)
    if path is not None:
        (path / "data").unlink(missing_ok=True)


def purge(settings: Settings, venue: str, now: float | None = None) -> int:
    """Delete the files of ``venue`` uploaded more than :data:`KEEP_S` ago; returns how many."""
    root, now = _root(settings, venue), now or time.time()
    gone = 0
    for path in root.glob("*/data") if root.is_dir() else []:
        uploaded = json.loads((path.parent / "meta.json").read_text()).get("uploaded_at", 0)
        if now - float(uploaded) > KEEP_S:
            path.unlink(missing_ok=True)
            gone += 1
    return gone


def purge_all(settings: Settings, now: float | None = None) -> int:
    """:func:`purge` for every venue with uploads (the console runs it every :data:`PURGE_EVERY_S`,
    so a file is deleted even if nobody opens its venue's pages again)."""
    root = settings.data_dir / "console" / "uploads"
    return sum(purge(settings, venue.name, now) for venue in (root.iterdir() if root.is_dir() else [])
               if venue.is_dir())


def _set_result(settings: Settings, venue: str, upload_id: str, result: dict[str, Any]) -> None:
    path = _dir(settings, venue, upload_id)
    if path is None:
        return
    current = json.loads((path / "meta.json").read_text())
    current["result"] = result
    (path / "meta.json").write_text(json.dumps(current, ensure_ascii=False))


def recent(settings: Settings, venue: str, limit: int = 20) -> list[dict[str, Any]]:
    """This venue's latest uploads, newest first (with their id)."""
    purge(settings, venue)
    root = _root(settings, venue)
    found = []
    for path in root.glob("*/meta.json") if root.is_dir() else []:
        entry = json.loads(path.read_text())
        entry["id"] = path.parent.name
        found.append(entry)
    return sorted(found, key=lambda m: m["uploaded_at"], reverse=True)[:limit]


def detect(raw: bytes, filename: str, choices: list[Profile]) -> tuple[Profile | None, TableError | None]:
    """The profile of ``choices`` whose columns the file holds (the one using most of them); else
    ``None`` and the reading error of the first profile (it names the likely cause: delimiter, encoding…)."""
    fitting, first_error = [], None
    for profile in choices:
        try:
            table = read_profile_table(raw, filename, profile)
        except TableError as exc:
            first_error = first_error or exc
            continue
        fitting.append((len(profile.columns & set(table.header)), profile.name, profile))
    if fitting:
        return max(fitting, key=lambda f: (f[0], f[1]))[2], None
    return None, first_error


@dataclass
class Analysis:
    profile: Profile
    table: Table
    preview: list[tuple[int, dict[str, Any]]]
    report: ImportReport
    valid: int
    already: int

    @property
    def errors(self) -> list[RowError]:
        return self.report.errors

    @property
    def fresh(self) -> int:
        return self.valid - self.already


def _flatten(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def analyse(settings: Settings, venue: str, raw: bytes, filename: str, profile: Profile) -> Analysis:
    """Dry run: the first rows as events, every row error, valid rows and those already sent
    (:class:`TableError` if the file cannot be read for ``profile``)."""
    table = read_profile_table(raw, filename, profile)
    preview = [(line, _flatten(build_event(row, profile)[0])) for line, row in table.rows[:PREVIEW_ROWS]]
    records, report = validate_rows(table, profile, venue, settings.require_subject_key())
    ledger = ImportLedger(settings.data_dir / "imports" / f"{venue}.sqlite")
    try:
        already = len(ledger.known([r.event_id for r in records]))
    finally:
        ledger.close()
    return Analysis(profile, table, preview, report, len(records), already)


@dataclass
class Progress:
    total: int
    done: int = 0
    state: str = "running"  # running | done | failed
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class Sender:
    """Sends uploads in the background, one at a time per upload; progress readable meanwhile."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._progress: dict[tuple[str, str], Progress] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def progress(self, venue: str, upload_id: str) -> Progress | None:
        return self._progress.get((venue, upload_id))

    def start(self, venue: str, upload_id: str, table: Table, profile: Profile) -> Progress:
        key = (venue, upload_id)
        current = self._progress.get(key)
        if current is not None and current.state == "running":
            return current
        progress = self._progress[key] = Progress(len(table.rows))

        def advance(n: int) -> None:
            progress.done += n

        async def run() -> None:
            try:  # in a thread with its own loop: converting a large file never stalls the other pages
                report = await asyncio.to_thread(asyncio.run, run_import(self.settings, table, venue, profile,
                                                                         progress=advance))
            except TechneError as exc:
                progress.state, progress.error = "failed", str(exc)
                return
            except Exception as exc:  # anything else (disk, database): failed, never "running" for ever
                log.exception("console: sending upload %s of %s failed", upload_id, venue)
                progress.state, progress.error = "failed", type(exc).__name__
                return
            progress.result = {**report.as_dict(), "sent_at": time.time(),
                               "errors": [vars(e) for e in report.errors[:ERRORS_KEPT]]}
            progress.state = "done"
            _set_result(self.settings, venue, upload_id, progress.result)
            forget(self.settings, venue, upload_id)  # sent: the personal data in the file is not needed any more

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return progress
