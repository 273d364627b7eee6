"""Read-only SQL on a sink's own embedded store, served on loopback while the sink writes.

A chDB directory is exclusive to the one process that holds it (the sink), so every other
reader (console, ``techne query``, insights, the DPO report) asks that process. Contract:

- :class:`ReadOnlySession` is a second chDB session on the store's directory, inside the sink's
  process (chDB allows several sessions on the directory its engine holds). Before anything
  else it sets ``max_execution_time`` (the timeout), ``max_result_rows`` with
  ``result_overflow_mode = 'throw'`` (the row cap) and then ``readonly = 1``: ClickHouse itself
  refuses every write, DDL, ``SYSTEM``, table function and any later change of these settings
  (``SET`` or a ``SETTINGS`` clause), whatever the SQL text. Two things ``readonly`` does not
  stop in the embedded engine are refused before the statement runs, on the engine's own
  parse of it (``formatQuerySingleLine``, so comments and quoting cannot hide them): ``INTO
  OUTFILE`` (the local client writes the file) and the ``file()`` function (it reads any file
  the sink's user can: other stores, endpoint tokens, keys).
- :class:`ReadServer` serves ``POST /query`` on ``127.0.0.1`` only: JSON ``{"sql", "params",
  "format", "database"}`` with ``Authorization: Bearer <token>``; answers ``200`` with the result bytes in
  ``format`` (``JSONCompactEachRow`` by default), ``401`` for a missing or wrong token
  (constant-time comparison), ``400`` for a malformed body, ``params`` or ``Content-Length``, ``409`` when
  the body names a ``"database"`` other than this store's (a reader following a stale endpoint
  file to a port another sink now holds), ``413`` above :data:`MAX_BODY` bytes, ``403`` for a statement
  the engine refused as a write (``READONLY``), ``422`` for any other engine error (code and
  name only, never row contents). Each query runs with the store's database current.
- The endpoint file :func:`endpoint_path` (next to the store directory, mode 0600) tells local
  readers the port, the PID and, when ``TECHNE_READ_TOKEN`` is unset, the random token this
  process generated. It is removed on :meth:`ReadServer.close`.

The sink process starts it through :func:`start_for_store` (one call in :mod:`sinks.runner`);
readers use :mod:`sinks.reader`, never this module directly.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from chdb.session import Session

from core.errors import ReadRefused, StoreUnavailable
from sinks.chdb import open_session, param_text, redact
from sinks.ddl import quote

log = logging.getLogger(__name__)
MAX_BODY = 256 * 1024
DEFAULT_FORMAT = "JSONCompactEachRow"
_OUTSIDE_THE_STORE = re.compile(r"\bINTO OUTFILE\b|(?<![\w.])file\(")
"""In the engine's formatting of a statement: what reads or writes a file outside the store."""


def endpoint_path(store_dir: Path) -> Path:
    """Where the read server of the process holding ``store_dir`` writes its port and token."""
    return store_dir.with_name(f".{store_dir.name}.read.json")


class ReadOnlySession:
    """A read-only chDB session on ``path`` with a timeout and a row cap (see module doc)."""

    def __init__(self, path: Path, database: str, *, max_rows: int, timeout_s: float) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._session: Session | None = open_session(path)
        try:
            for statement in (f"SET max_execution_time = {float(timeout_s)}",
                              f"SET max_result_rows = {int(max_rows)}",
                              "SET result_overflow_mode = 'throw'",
                              "SET output_format_json_quote_64bit_integers = 0",
                              "SET readonly = 1"):
                self._session.query(statement, "CSV")
        except RuntimeError as exc:
            self.close()
            raise StoreUnavailable(f"read-only session on {path.name}: {redact(str(exc))}") from exc

    def query(self, sql: str, params: dict[str, Any] | None = None, fmt: str = DEFAULT_FORMAT) -> bytes:
        """Run ``sql`` with the store's database current; raises :class:`ReadRefused` for a write."""
        text = {k: param_text(v) for k, v in params.items()} if params else None
        with self._lock:
            if self._session is None:
                raise StoreUnavailable("read-only session is closed")
            try:
                self._session.query(f"USE {quote(self.database)}", "CSV")
                shown = self._session.query("SELECT formatQuerySingleLine({q:String})", "TSVRaw",
                                            params={"q": param_text(sql)})
                if _OUTSIDE_THE_STORE.search(shown.bytes().decode(errors="replace")):
                    raise ReadRefused("read-only: no file is read or written through the read path "
                                      "(INTO OUTFILE, file())")
                result = self._session.query(sql, fmt, params=text)
            except RuntimeError as exc:
                message = redact(str(exc))
                if "READONLY" in message:
                    raise ReadRefused(f"read-only: {message}") from exc
                raise StoreUnavailable(message) from exc
        data = result.bytes() if hasattr(result, "bytes") else b""
        return data if isinstance(data, bytes) else b""

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()


def _handler(session: ReadOnlySession, token: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a reader's connection serves its next queries
        disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall)

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests may carry SQL: nothing of them in the logs

        def _answer(self, status: int, body: bytes, ctype: str = "application/json", close: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self.close_connection = True  # the request body may be unread: never reuse this connection
            self._answer(status, json.dumps({"error": message}).encode(), close=True)

        def do_POST(self) -> None:
            given = self.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                self._error(401, "missing or wrong read token")
                return
            if self.path != "/query":
                self._error(404, "unknown path")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:  # rfile.read(-1) would read until the client closes: no bound
                self._error(400, "Content-Length must be a non-negative integer")
                return
            if length > MAX_BODY:
                self._error(413, f"request above {MAX_BODY} bytes")
                return
            try:
                request = json.loads(self.rfile.read(length))
                sql, params = str(request["sql"]), request.get("params") or None
                fmt = str(request.get("format") or DEFAULT_FORMAT)
                database = request.get("database")
            except (ValueError, KeyError, TypeError, AttributeError):
                self._error(400, "body must be JSON {\"sql\": ..., \"params\": {...}, \"format\": ...}")
                return
            if params is not None and not (isinstance(params, dict) and all(
                    isinstance(v, str | int | float | bool | list) for v in params.values())):
                self._error(400, "params must be an object of strings, numbers, booleans or arrays")
                return
            if database is not None and str(database) != session.database:
                self._error(409, "this read server serves another store")
                return
            try:
                data = session.query(sql, params, fmt)
            except ReadRefused as exc:
                self._error(403, str(exc))
                return
            except TypeError as exc:  # e.g. an array of objects among the params
                self._error(400, f"params: {exc}")
                return
            except StoreUnavailable as exc:
                self._error(422, str(exc))
                return
            self._answer(200, data, "application/octet-stream")

    return Handler


class ReadServer:
    """The loopback HTTP server of one store (see module doc)."""

    def __init__(self, store_dir: Path, session: ReadOnlySession, token: str | None, port: int = 0) -> None:
        generated = token is None
        self.token = token or secrets.token_urlsafe(32)
        self._session = session
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(session, self.token))
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.endpoint = endpoint_path(store_dir)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="read-server", daemon=True)
        self._thread.start()
        entry: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "pid": os.getpid()}
        if generated:
            entry["token"] = self.token
        tmp = self.endpoint.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f)
        os.replace(tmp, self.endpoint)

    def close(self) -> None:
        try:
            self.endpoint.unlink(missing_ok=True)
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._session.close()


def start_for_store(store_dir: Path, database: str, *, token: str | None, max_rows: int,
                    timeout_s: float) -> ReadServer:
    """Open a read-only session on the (already opened) store and serve it on loopback."""
    session = ReadOnlySession(store_dir, database, max_rows=max_rows, timeout_s=timeout_s)
    try:
        server = ReadServer(store_dir, session, token)
    except BaseException:
        session.close()
        raise
    log.info("read-only queries on %s served at 127.0.0.1:%d", store_dir.name, server.port)
    return server
