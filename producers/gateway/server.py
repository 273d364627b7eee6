"""The gateway's HTTP server: uvicorn with bounded request heads.

uvicorn's httptools protocol keeps every header line a client sends (llhttp itself sets no
limit): a 1 MB header or 5,000 headers would be accepted and buffered. :class:`BoundedHttpTools`
counts the request line and the headers as they are parsed and refuses, before any of it
reaches the app, and closes the connection:

* ``414 uri_too_long``: a request target over ``MAX_URL_BYTES``;
* ``431 headers_too_large``: headers over ``MAX_HEADER_BYTES`` in total, or more than
  ``MAX_HEADERS`` of them;
* ``400 malformed_http``: what the HTTP parser itself refuses (both ``Content-Length`` and
  ``Transfer-Encoding``, a bad chunk size, a malformed header), instead of uvicorn's plain text;
* ``408 request_timeout``: a request line and headers not complete ``head_timeout`` seconds after
  the connection opened or the previous answer (a slow-loris client holds no connection forever;
  uvicorn itself only times out idle keep-alive connections).

Each refusal is a problem answer (``{"error", "detail", "limit", "max"}``) counted in
``techne_gateway_requests_total`` (venue ``unknown``: the app never saw the request).
The bounds hold whatever the client's pace, since they are checked per parsed fragment.
After a refusal the connection closes lingeringly: the answer is sent, the write side shut,
and what the client still sends is read and discarded (up to ``LINGER_BYTES`` or
``LINGER_SECONDS``) so that a client still writing its oversized head reads the answer
instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core import metrics

MAX_URL_BYTES = 32 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
LINGER_BYTES = 16 * 1024 * 1024
LINGER_SECONDS = 5.0


class HeadRefused(Exception):
    """Raised inside a parser callback: the request head is over a bound (stops the parser)."""

    def __init__(self, status: int, error: str, detail: str, limit: str | None = None,
                 maximum: int | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.limit, self.maximum = status, error, detail, limit, maximum


_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds above on each request head."""

    _url_bytes = 0
    _header_bytes = 0
    _headers = 0
    _head_refused: HeadRefused | None = None
    _lingering: int | None = None  # bytes discarded since the refusal
    _head_timer: asyncio.TimerHandle | None = None
    head_timeout: float = 30.0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head has the same time

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # closed, or a request is being served (its body has its own timeout)
        self._head_refused = HeadRefused(408, "request_timeout", f"request head not received in "
                                         f"{self.head_timeout:g} s", "head_seconds", int(self.head_timeout))
        self.send_400_response("")

    def data_received(self, data: bytes) -> None:
        if self._lingering is None:
            super().data_received(data)
            return
        self._lingering += len(data)
        if self._lingering > LINGER_BYTES:
            self.transport.close()

    def on_message_begin(self) -> None:
        self._url_bytes = self._header_bytes = self._headers = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > MAX_URL_BYTES:
            self._refuse(HeadRefused(414, "uri_too_long", f"request target over {MAX_URL_BYTES} bytes",
                                     "url_bytes", MAX_URL_BYTES))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        self._header_bytes += len(name) + len(value) + 4
        if self._headers > MAX_HEADERS:
            self._refuse(HeadRefused(431, "headers_too_large", f"more than {MAX_HEADERS} headers",
                                     "headers", MAX_HEADERS))
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(HeadRefused(431, "headers_too_large", f"headers over {MAX_HEADER_BYTES} bytes",
                                     "header_bytes", MAX_HEADER_BYTES))
        super().on_header(name, value)

    def _refuse(self, refused: HeadRefused) -> None:
        self._head_refused = refused
        raise refused  # httptools stops parsing; uvicorn then calls send_400_response

    def send_400_response(self, msg: str) -> None:
        refused, self._head_refused = self._head_refused, None
        if refused is None:  # the parser's own refusal (its message may quote the input: not kept)
            refused = HeadRefused(400, "malformed_http", "the request is not valid HTTP/1.1 (e.g. both "
                                  "Content-Length and Transfer-Encoding, a bad chunk size or header)")
        metrics.INGESTED.labels(venue="unknown", status=str(refused.status)).inc()
        metrics.INGEST_REJECTED.labels(venue="unknown", reason=refused.error).inc()
        fields: dict[str, str | int | None] = {"error": refused.error, "detail": refused.detail}
        if refused.limit is not None:
            fields.update(limit=refused.limit, max=refused.maximum)
        body = json.dumps(fields).encode()
        self.transport.write(b"".join([
            b"HTTP/1.1 %d %s\r\n" % (refused.status, _REASONS[refused.status]),
            b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n", body]))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._lingering = 0
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def run(app: Any, host: str, port: int, head_timeout: float = 30.0, trusted_proxies: str | None = None) -> None:
    """Serve ``app`` with uvicorn and the bounded protocol (no access log: it would hold query strings).
    ``trusted_proxies``: peers whose ``X-Forwarded-For`` names the client (``request.client``); None
    trusts no header (the peer is the client)."""
    import uvicorn

    protocol = type("BoundedHttpTools", (BoundedHttpTools,), {"head_timeout": head_timeout})
    proxies: dict[str, Any] = ({"proxy_headers": True, "forwarded_allow_ips": trusted_proxies} if trusted_proxies
                               else {"proxy_headers": False})
    uvicorn.run(app, host=host, port=port, http=protocol, log_level="warning", access_log=False, **proxies)
