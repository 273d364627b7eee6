"""The one read path of every store, for every reader (console, ``techne query``, insights, the
DPO report), while the sinks write.

:func:`open_reader` picks the transport, always read-only (ClickHouse ``readonly = 1``), with
the timeout ``settings.read_timeout_s`` and the row cap ``settings.read_max_rows``:

1. a ClickHouse server (``settings.clickhouse_url``): read directly with those settings;
2. an embedded store whose sink runs (its endpoint file exists, names a live process and
   answers for this store's database): the sink's loopback read server
   (:mod:`sinks.read_server`), with ``settings.read_token`` or the token that sink wrote in its
   0600 endpoint file; a stale file (dead process, port closed or now serving another store)
   is ignored;
3. an embedded store nobody holds: opened in this process (``ensure`` creates its tables
   first, so an empty store reads as empty), queried through a read-only session, closed.
   chDB allows one directory per process: direct readers of one process take turns. A read
   never creates a store: a missing data directory or store raises
   :class:`~core.errors.StoreMissing`.

Errors: :class:`~core.errors.ReadRefused` for a statement the engine refused as a write or one
above the read server's body cap;
:class:`~core.errors.StoreUnavailable` for any other failure (engine error as code and name,
read server unreachable, token refused); :class:`~core.errors.StoreLocked` when the store is
held by a process that serves no reads (e.g. a sink of an older version).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from core.errors import ReadRefused, StoreMissing, StoreUnavailable
from core.settings import Settings
from sinks.base import Params
from sinks.chdb import ChdbStore
from sinks.ddl import parse_json_compact
from sinks.read_server import DEFAULT_FORMAT, ReadOnlySession, endpoint_path

__all__ = ["ReadRefused", "Reader", "StoreRef", "open_reader", "read_rows", "require_store"]
_DIRECT = threading.Lock()


@dataclass(frozen=True)
class StoreRef:
    """A store to read: its embedded directory and its database (the same name on a server)."""

    name: str
    store_dir: Path
    database: str
    ensure: Callable[[ChdbStore], object] | None = None
    """Creates the store's tables when it is opened directly (embedded, no sink running)."""


class _Unreachable(StoreUnavailable):
    """The read server did not answer (e.g. a stale endpoint file of a sink that died)."""


class Reader(Protocol):
    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Rows as JSON values."""

    def query_text(self, sql: str, fmt: str = "PrettyCompact") -> str:
        """The result rendered in the ClickHouse output format ``fmt``."""


def _params(params: Params | None) -> dict[str, Any] | None:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()} if params else None


_CLIENTS: OrderedDict[tuple[str, str, float], httpx.Client] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
MAX_CLIENTS = 32
"""Kept-alive clients at most: a sink restarted on a new port makes a new one, the least
recently used beyond this many is closed (a long-running console would otherwise keep one per
port ever seen)."""


def _client(url: str, token: str, timeout_s: float) -> httpx.Client:
    """One kept-alive client per read server (a new client per read costs a TLS context and a connect)."""
    key = (url, token, timeout_s)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = httpx.Client(base_url=url, timeout=timeout_s + 5.0,
                                                  headers={"Authorization": f"Bearer {token}"})
            while len(_CLIENTS) > MAX_CLIENTS:
                _, oldest = _CLIENTS.popitem(last=False)
                oldest.close()
        _CLIENTS.move_to_end(key)
        return client


class _HttpReader:
    def __init__(self, url: str, token: str, timeout_s: float, database: str) -> None:
        self._client = _client(url, token, timeout_s)
        self._database = database

    def raw(self, sql: str, params: Params | None, fmt: str) -> bytes:
        body = {"sql": sql, "params": _params(params), "format": fmt, "database": self._database}
        try:
            resp = self._client.post("/query", json=body)
        except httpx.HTTPError as exc:
            raise _Unreachable(f"read server unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 200:
            return resp.content
        if resp.status_code == 409:  # the port is now another store's server: the endpoint file is stale
            raise _Unreachable("read server serves another store")
        try:
            message = str(resp.json().get("error", ""))
        except ValueError:
            message = resp.text[:200]
        if resp.status_code in (403, 413):  # a write, or a statement above the body cap: the same again fails
            raise ReadRefused(message)
        raise StoreUnavailable(f"read server answered {resp.status_code}: {message}")

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return parse_json_compact(self.raw(sql, params, DEFAULT_FORMAT))

    def query_text(self, sql: str, fmt: str = "PrettyCompact") -> str:
        return self.raw(sql, None, fmt).decode(errors="replace")


class SessionReader:
    def __init__(self, session: ReadOnlySession) -> None:
        self._session = session

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return parse_json_compact(self._session.query(sql, _params(params)))

    def query_text(self, sql: str, fmt: str = "PrettyCompact") -> str:
        return self._session.query(sql, None, fmt).decode(errors="replace")


class _ServerReader:
    def __init__(self, settings: Settings, database: str) -> None:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        self._error = ClickHouseError
        password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else ""
        limits = {"readonly": 1, "max_execution_time": settings.read_timeout_s,
                  "max_result_rows": settings.read_max_rows, "result_overflow_mode": "throw",
                  "output_format_json_quote_64bit_integers": 0}
        try:
            self._client = clickhouse_connect.get_client(dsn=settings.clickhouse_url, username=settings.clickhouse_user,
                                                         password=password, database=database, settings=limits)
        except ClickHouseError as exc:
            raise StoreUnavailable(f"cannot connect to ClickHouse: {exc}") from exc

    def raw(self, sql: str, params: Params | None, fmt: str) -> bytes:
        from sinks.chdb import redact

        try:
            return bytes(self._client.raw_query(sql, parameters=_params(params), fmt=fmt))
        except self._error as exc:
            message = redact(str(exc))
            raise (ReadRefused if "READONLY" in message else StoreUnavailable)(message) from exc

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return parse_json_compact(self.raw(sql, params, DEFAULT_FORMAT))

    def query_text(self, sql: str, fmt: str = "PrettyCompact") -> str:
        return self.raw(sql, None, fmt).decode(errors="replace")

    def close(self) -> None:
        self._client.close()


def _endpoint(settings: Settings, ref: StoreRef) -> tuple[str, str] | None:
    """``(url, token)`` of the read server holding ``ref``, if its endpoint file is there."""
    try:
        entry = json.loads(endpoint_path(ref.store_dir).read_text())
        port, pid = int(entry["port"]), (int(entry["pid"]) if entry.get("pid") is not None else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if pid is not None and not _alive(pid):
        return None  # left by a sink that was killed: its port may be anyone's now
    token = settings.read_token.get_secret_value() if settings.read_token else entry.get("token")
    if not token:
        raise StoreUnavailable(f"{ref.name}: the read server needs TECHNE_READ_TOKEN")
    return f"http://{entry.get('host', '127.0.0.1')}:{port}", str(token)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def open_reader(settings: Settings, ref: StoreRef) -> Iterator[Reader]:
    """A read-only reader of ``ref`` for the duration of the ``with`` block (see module doc)."""
    if settings.clickhouse_url:
        server = _ServerReader(settings, ref.database)
        try:
            yield server
        finally:
            server.close()
        return
    endpoint = _endpoint(settings, ref)
    if endpoint is not None:
        http = _HttpReader(*endpoint, settings.read_timeout_s, ref.database)
        try:
            http.query("SELECT 1")
        except _Unreachable:
            pass  # stale endpoint file (the sink died): read the directory ourselves
        else:
            yield http
            return
    require_store(settings, ref)
    with _DIRECT:
        store = ChdbStore(ref.store_dir)  # raises StoreLocked if a process holds it without serving reads
        try:
            if ref.ensure is not None:
                ref.ensure(store)
            session = ReadOnlySession(ref.store_dir, ref.database, max_rows=settings.read_max_rows,
                                      timeout_s=settings.read_timeout_s)
            try:
                yield SessionReader(session)
            finally:
                session.close()
        finally:
            store.close()


def require_store(settings: Settings, ref: StoreRef) -> None:
    """Raise :class:`~core.errors.StoreMissing` unless the embedded store of ``ref`` exists."""
    if not settings.data_dir.is_dir():
        raise StoreMissing(f"data directory {settings.data_dir} does not exist (check --data-dir)")
    if not ref.store_dir.is_dir():
        raise StoreMissing(f"no store for {ref.name!r} in {settings.data_dir}: nothing was stored there "
                           f"({ref.store_dir} is missing; check --data-dir)")


def read_rows(settings: Settings, ref: StoreRef, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
    """Run one read query on ``ref`` (see :func:`open_reader`)."""
    with open_reader(settings, ref) as reader:
        return reader.query(sql, params)
