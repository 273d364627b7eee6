"""Embedded ClickHouse store (chDB): a :class:`~sinks.base.Store` on one local directory.

Contract:

- ``ChdbStore(path)`` opens ``path`` (created if missing) and holds it until
  :meth:`ChdbStore.close`. A directory is exclusive to one process: opening a directory that
  another process holds raises :class:`~core.errors.StoreLocked` naming the holder's PID.
- chDB runs one embedded engine per process, bound to one directory: opening a second,
  different directory while a store is open in the same process also raises ``StoreLocked``.
  Close, then open another path, is fine.
- Every other engine failure is raised as :class:`~core.errors.StoreUnavailable`; error
  texts from inserts are reduced to the ClickHouse error code and name so that row contents
  never reach logs.
- Inserts stream the encoded bytes through ``Session.send_insert`` (no SQL text is built
  around the data); ``insert_deduplication_token`` is a setting of the ``INSERT`` statement.
- Parameters are bound server-side (``{name:Type}`` placeholders), passed as their text form.
- The engine starts with :data:`ENGINE_SETTINGS` (memory caps and cache sizes for a small
  machine running several sinks, see below); they apply to the first store a process opens.
- Methods are blocking and thread-safe (one lock per store; the engine releases the GIL while
  it works); the sink calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chdb.session import Session

from core.errors import StoreLocked, StoreUnavailable
from sinks.base import Params
from sinks.ddl import parse_json_compact, quote

_CODE_RE = re.compile(r"Code: (\d+)")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")


#: Start-up settings of the embedded engine, passed as ``--name=value`` through the session's
#: connection string (``path?name=value&…``, chDB's documented form: "param=value will be passed
#: to ClickHouse engine as start up args"). ClickHouse's defaults are sized for a dedicated server
#: (5 GiB mark and primary-index caches, a memory cap of 90 % of RAM); a sink is one of many small
#: processes on a 2-core machine (one per partner, one per venue store, the audit sink), writing
#: small batches and answering a few lookups. What they buy is a *bound*, not a lower peak: in
#: ``techne bench e2e`` a sink's peak RSS is ~380-410 MiB with or without them, of which
#: ~220-250 MiB are clean pages of chDB's 530 MiB library (shared by every sink on the machine,
#: counted in each one's RSS) and ~145 MiB private (Python, aiokafka, pyarrow that chDB imports,
#: the engine). Without them the caches below may grow to gigabytes over days. Chosen:
#:
#: - ``max_server_memory_usage`` 384 MiB: hard cap on the engine's tracked memory (queries,
#:   merges, caches); beyond it an insert or merge fails with MEMORY_LIMIT_EXCEEDED (the sink
#:   retries, nothing is lost) instead of the process growing.
#: - ``max_memory_usage`` 256 MiB per query: a console report scanning a large table fails
#:   clearly rather than starving the inserts.
#: - ``mark_cache_size`` 16 MiB, ``index_mark_cache_size`` 8 MiB, ``primary_index_cache_size``
#:   16 MiB, ``query_condition_cache_size`` 4 MiB: bounded caches (defaults 5 GiB / 100 MiB)
#:   so they cannot creep up over hours; the tables are ordered by the lookup keys.
#: - ``uncompressed_cache_size`` 0 (the default, stated): no cache of decompressed blocks.
#: - ``max_threads`` 1, ``max_insert_threads`` 1: one thread per query; a sink's queries are
#:   small and the machine's two cores are shared by every stage.
#: - ``max_insert_block_size`` / ``min_insert_block_size_rows`` 65 536: a sink batch is one
#:   part; the 1 M-row default only sizes buffers bigger than any batch.
#: - ``background_pool_size`` 2 (merges), ``background_schedule_pool_size`` 2: the engine's
#:   own values on 2 cores, stated so that they do not grow on a bigger machine.
ENGINE_SETTINGS: dict[str, int] = {
    "max_server_memory_usage": 384 * 2**20,
    "max_memory_usage": 256 * 2**20,
    "mark_cache_size": 16 * 2**20,
    "index_mark_cache_size": 8 * 2**20,
    "primary_index_cache_size": 16 * 2**20,
    "query_condition_cache_size": 4 * 2**20,
    "uncompressed_cache_size": 0,
    "max_threads": 1,
    "max_insert_threads": 1,
    "max_insert_block_size": 65_536,
    "min_insert_block_size_rows": 65_536,
    "background_pool_size": 2,
    "background_schedule_pool_size": 2,
}


def connection_string(path: Path, settings: dict[str, int] | None = None) -> str:
    """``path?name=value&…``: the directory and the engine's start-up settings (:data:`ENGINE_SETTINGS`)."""
    chosen = ENGINE_SETTINGS if settings is None else settings
    return f"{path}?" + "&".join(f"{k}={v}" for k, v in chosen.items()) if chosen else str(path)


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
    pid = _holder_pid(path)  # checked first: the engine would print its own lock error on stderr
    if pid is not None and pid != str(os.getpid()):  # this process's own sessions share the engine
        raise StoreLocked(f"store {path} is held by another process (PID {pid}), e.g. a running "
                          "`techne sink`; stop it or use the ClickHouse server store")
    try:
        return Session(connection_string(path))
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


def param_text(value: Any) -> str:
    """Text form of a bound parameter: strings escaped as in TSV, lists as array literals."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            plain = "".join(value)
            if "'" not in plain and "\\" not in plain:  # the usual case: nothing to escape
                return "['" + "','".join(value) + "']" if value else "[]"
        return "[" + ",".join(_sql_string(v) if isinstance(v, str) else param_text(v) for v in value) + "]"
    raise TypeError(f"unsupported parameter type {type(value).__name__}")


class ChdbStore:
    """An embedded chDB directory (see module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
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

    def _run(self, sql: str, params: Params | None = None, fmt: str = "JSONCompactEachRow") -> bytes:
        text = {k: param_text(v) for k, v in params.items()} if params else None
        with self._lock:
            if self._session is None:
                raise StoreUnavailable(f"chDB store {self.path} is closed")
            try:
                result = self._session.query(sql, fmt, params=text)
            except RuntimeError as exc:
                raise StoreUnavailable(f"chDB {self.path.name}: {str(exc)[:500]}") from exc
        data = result.bytes() if hasattr(result, "bytes") else b""
        return data if isinstance(data, bytes) else b""

    def command(self, sql: str, params: Params | None = None) -> None:
        self._run(sql, params)

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return parse_json_compact(self._run(sql, params))

    def insert(self, table: str, columns: Sequence[str], data: bytes, fmt: str, token: str) -> None:
        names = ", ".join(quote(c) for c in columns)
        sql = f"INSERT INTO {table} ({names}) SETTINGS insert_deduplication_token = {_sql_string(token)}"
        with self._lock:
            if self._session is None:
                raise StoreUnavailable(f"chDB store {self.path} is closed")
            try:
                inserter = self._session.send_insert(sql, fmt)
                try:
                    inserter.append(data)
                except BaseException:
                    inserter.cancel()
                    raise
                inserter.finish()
            except RuntimeError as exc:
                raise StoreUnavailable(f"chDB {self.path.name}: {redact(str(exc))}") from exc

    def use(self, database: str) -> None:
        self._run(f"USE {quote(database)}")

    def query_text(self, sql: str, fmt: str = "PrettyCompact") -> str:
        """Run ``sql`` and return the result rendered in the ClickHouse output format ``fmt``."""
        return self._run(sql, fmt=fmt).decode(errors="replace")

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()
