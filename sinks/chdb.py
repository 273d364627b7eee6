"""Embedded ClickHouse store (chDB), one directory per partner.

Contract:

- ``ChdbStore(path, database)`` opens ``path`` (created if missing) and holds it until
  :meth:`ChdbStore.close`. A directory is exclusive to one process: opening a directory that
  another process holds raises :class:`~techne.errors.StoreLocked` naming the holder's PID.
- chDB runs one embedded engine per process, bound to one directory: opening a second,
  different directory while a store is open in the same process also raises ``StoreLocked``.
  Close, then open another path, is fine.
- Every other engine failure is raised as :class:`~techne.errors.StoreUnavailable`; error
  texts from inserts are reduced to the ClickHouse error code and name so that row contents
  never reach logs.
- Rows are inserted with ``INSERT ... SETTINGS insert_deduplication_token=... FORMAT
  JSONEachRow`` followed by the NDJSON body inline in the same statement.
- After :meth:`ChdbStore.ensure_schema` the partner database is the session's current one,
  so ad-hoc queries may name ``ticket_orders`` unqualified.
- Methods are blocking and thread-safe (one lock per store); the sink calls them through
  ``asyncio.to_thread``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chdb.session import Session

from sinks import ddl
from sinks.ddl import Row
from techne.errors import StoreLocked, StoreUnavailable

_ID_CHUNK = 10_000
_CODE_RE = re.compile(r"Code: (\d+)")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def redact(message: str) -> str:
    """``ClickHouse error <code> <NAME>`` from an engine message, dropping quoted input."""
    code = _CODE_RE.search(message)
    name = _NAME_RE.findall(message)
    if not code:
        return "ClickHouse error (no code)"
    return f"ClickHouse error {code.group(1)} {name[-1] if name else ''}".rstrip()


def _holder_pid(path: Path) -> str | None:
    """PID written in the engine's ``status`` file if that file is locked, else ``None``."""
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                return None
            text = status.read_text(errors="replace")
            match = re.search(r"PID:\s*(\d+)", text)
            return match.group(1) if match else "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def open_session(path: Path) -> Session:
    """Open a chDB session on ``path``, translating lock conflicts into ``StoreLocked``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create store directory {path}: {exc.strerror}") from exc
    try:
        return Session(str(path))
    except RuntimeError as exc:
        message = str(exc)
        if "already initialized with path" in message:
            raise StoreLocked(
                f"cannot open {path}: this process already has another chDB store open "
                "(chDB allows one store directory per process; close it first)"
            ) from exc
        pid = _holder_pid(path)
        if pid is not None:
            raise StoreLocked(
                f"store {path} is held by another process (PID {pid}), e.g. a running "
                "`techne sink`; stop it or use the ClickHouse server store"
            ) from exc
        raise StoreUnavailable(f"cannot open chDB store {path}: {message[:300]}") from exc


class ChdbStore:
    """A partner's ``ticket_orders`` table in an embedded chDB directory (see module doc)."""

    def __init__(self, path: Path, database: str) -> None:
        self.path = path
        self.database = database
        self._lock = threading.Lock()
        self._session: Session | None = open_session(path)
        try:
            self._run("SET output_format_json_quote_64bit_integers = 0")
        except StoreUnavailable:
            self.close()
            raise

    def __enter__(self) -> ChdbStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(
        self, sql: str, params: dict[str, str] | None = None, redacted: bool = False, fmt: str = "JSONCompactEachRow"
    ) -> bytes:
        with self._lock:
            if self._session is None:
                raise StoreUnavailable(f"chDB store {self.path} is closed")
            try:
                result = self._session.query(sql, fmt, params=params)
            except RuntimeError as exc:
                detail = redact(str(exc)) if redacted else str(exc)[:500]
                raise StoreUnavailable(f"chDB {self.database}: {detail}") from exc
        data = result.bytes() if hasattr(result, "bytes") else b""
        return data if isinstance(data, bytes) else b""

    def ensure_schema(self) -> None:
        self._run(ddl.create_database_sql(self.database))
        self._run(ddl.create_table_sql(self.database))
        existing = {
            str(name)
            for (name,) in ddl.parse_json_compact(
                self._run(
                    "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}",
                    {"d": self.database, "t": ddl.TABLE},
                )
            )
        }
        for statement in ddl.add_missing_columns_sql(self.database, existing):
            self._run(statement)
        self._run(f"USE {ddl.quote(self.database)}")

    def existing_event_ids(self, ids: Sequence[str]) -> set[str]:
        valid = [str(uuid.UUID(i)) for i in ids if _is_uuid(i)]
        found: set[str] = set()
        sql = ddl.existing_ids_sql(self.database)
        for start in range(0, len(valid), _ID_CHUNK):
            chunk = valid[start : start + _ID_CHUNK]
            param = "[" + ",".join(f"'{i}'" for i in chunk) + "]"
            found.update(str(r[0]) for r in ddl.parse_json_compact(self._run(sql, {"ids": param})))
        return found

    def insert(self, rows: Sequence[Row], dedup_token: str) -> None:
        if not rows:
            return
        sql = (
            f"INSERT INTO {ddl.qualified_table(self.database)} "
            f"SETTINGS insert_deduplication_token = {_sql_string(dedup_token)} "
            "FORMAT JSONEachRow\n"
        )
        self._run(sql + ddl.to_json_each_row(rows).decode(), redacted=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return ddl.parse_json_compact(self._run(sql))

    def query_text(self, sql: str, fmt: str = "PrettyCompact") -> str:
        """Run ``sql`` and return the result rendered in the ClickHouse output format ``fmt``."""
        return self._run(sql, fmt=fmt).decode(errors="replace")

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
