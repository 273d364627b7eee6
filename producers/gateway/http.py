"""HTTP helpers shared by the gateway's routes: problem answers, capped body reads, media types.

An answer that refuses a request is ``{"error": <code>, "detail": <text>, ...}`` with its
status; it counts in ``techne_gateway_requests_total`` and, per reason, in
``techne_gateway_events_rejected_total``. ``detail`` never holds a secret, a signature or an
input value.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics
from core.door import Refused

log = logging.getLogger("techne.gateway")

RETRY_AFTER_S = 5


class BodyTooLarge(Exception):
    """The body is over the cap (detected from Content-Length or while reading)."""


def problem(status: int, error: str, detail: str, venue: str, *, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    metrics.INGESTED.labels(venue=venue, status=str(status)).inc()
    metrics.INGEST_REJECTED.labels(venue=venue, reason=error).inc()
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_S), **(headers or {})}
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


def refusal(exc: Refused, venue: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """The problem answer of a body the parsing door refused (it names the limit, if one)."""
    return problem(exc.status, exc.error, exc.detail, venue, headers=headers, **exc.extra)


async def not_routed(request: Request, exc: Exception) -> JSONResponse:
    """The problem answer of a request no route takes: 404 (no such path) or 405 (naming the
    methods the path answers, in ``Allow`` too)."""
    allow = (getattr(exc, "headers", None) or {}).get("Allow")
    if getattr(exc, "status_code", 404) == 405 and allow:
        return problem(405, "method_not_allowed", f"this route answers {allow}", "unknown", headers={"Allow": allow})
    return problem(404, "not_found", "no such route (the routes: /docs)", "unknown")


def answer(status: int, body: dict[str, Any], venue: str, headers: dict[str, str] | None = None) -> JSONResponse:
    metrics.INGESTED.labels(venue=venue, status=str(status)).inc()
    return JSONResponse(body, status_code=status, headers=headers)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


class BodyTimeout(Exception):
    """The body did not arrive within the gateway's ``request_body_timeout_s`` (a slow client)."""


async def read_capped(request: Request, cap: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it passes ``cap`` bytes (never read past
    it), or :class:`BodyTimeout` when it is not all there ``request_body_timeout_s`` after asking."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(request.app.state.gateway.settings.request_body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout from None
    return b"".join(chunks)


def body_timeout(request: Request, venue: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The 408 answer to a body that came too slowly (nothing of it is used)."""
    seconds = request.app.state.gateway.settings.request_body_timeout_s
    return problem(408, "request_timeout", f"body not received in {seconds:g} s", venue, headers=headers,
                   limit="body_seconds", max=int(seconds))


async def read_body(request: Request, media: Sequence[str], cap: int, venue: str) -> bytes | JSONResponse:
    """The body of a request of one of the ``media`` types, at most ``cap`` bytes; else the
    refusal: 415 naming the accepted types, 413 naming the limit, or 408 for a body too slow.
    ``""`` among ``media`` accepts a request without a ``Content-Type``."""
    if media_type(request) not in media:
        return problem(415, "unsupported_media_type", f"send {' or '.join(m for m in media if m)}", venue)
    try:
        return await read_capped(request, cap)
    except BodyTimeout:
        return body_timeout(request, venue)
    except BodyTooLarge:
        return problem(413, "body_too_large", f"body exceeds {cap} bytes", venue, limit="body_bytes", max=cap)


# --- the door middleware: read-then-answer, and every unhandled error a counted 500 -------------

DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0


class _Body:
    """What the app has read of the request body so far."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        found = dict(headers)
        self.declared = int(found[b"content-length"]) if found.get(b"content-length", b"").isdigit() else None
        self.expects_continue = found.get(b"expect", b"").lower() == b"100-continue"
        self.done = self.declared == 0 or (self.declared is None and b"transfer-encoding" not in found)
        self.asked = False


class Door:
    """ASGI middleware wrapping every route of the gateway.

    * Read-then-answer: before a response starts, the rest of an unread request body is read and
      discarded (up to ``DRAIN_BYTES`` within ``DRAIN_SECONDS``), so a client that writes its
      whole body before reading (Python's urllib, which also asks ``Connection: close``) gets
      the answer (413, 415, 401...) instead of a broken pipe. A body beyond that bound is not
      read: the answer carries ``Connection: close``. A client waiting for ``100 Continue`` is
      answered without being asked for its body.
    * A body sent with a ``Content-Encoding`` (gzip, br…) is refused, 415: the gateway never
      inflates client input, so a compressed bomb cannot reach a parser.
    * An exception escaping a route becomes a ``500 internal_error`` problem answer, counted in
      ``techne_gateway_requests_total{status="500"}``; the log line names the route and the
      exception type only (an exception message may quote input).
    """

    def __init__(self, app: ASGIApp, venue_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.venue_of = venue_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(scope["headers"])
        started = False
        encoding = dict(scope["headers"]).get(b"content-encoding", b"identity").strip().lower()

        async def tracked_receive() -> Message:
            body.asked = True
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body.done = True
            return message

        async def drain() -> bool:
            """Read and discard the rest of the body; False when it is over the bound."""
            if body.declared is not None and body.declared > DRAIN_BYTES:
                return False
            read = 0
            try:
                async with asyncio.timeout(DRAIN_SECONDS):
                    while not body.done:
                        read += len((await tracked_receive()).get("body", b""))
                        if read > DRAIN_BYTES:
                            return False
            except TimeoutError:
                return False
            return True

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # a client still waiting for "100 Continue" is not asked for its body; then, or past
                # the drain bound, the connection closes after the answer (its rest is unread)
                wait = message["status"] != 408 and (body.asked or not body.expects_continue)  # 408: too slow
                if not body.done and not (wait and await drain()):
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        if encoding not in (b"", b"identity"):  # we never inflate what a client compressed (no zip bombs)
            refused = problem(415, "unsupported_content_encoding", "send the body uncompressed "
                              "(no Content-Encoding, or identity)", "unknown")
            await refused(scope, tracked_receive, guarded_send)
            return
        try:
            await self.app(scope, tracked_receive, guarded_send)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            frame = traceback.extract_tb(exc.__traceback__)[-1:]
            where = f"{frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else "?"
            log.error("unhandled %s on %s %s at %s", type(exc).__name__, scope.get("method"), route, where)
            if started:
                metrics.INGESTED.labels(venue=self.venue_of(scope), status="500").inc()
                raise
            answer = problem(500, "internal_error", "the gateway failed on this request; it was not accepted",
                             self.venue_of(scope))
            await answer(scope, tracked_receive, guarded_send)
