"""HTTP helpers shared by the gateway's routes: problem answers, capped body reads, media types.

An answer that refuses a request is ``{"error": <code>, "detail": <text>, ...}`` with its
status; it counts in ``techne_gateway_requests_total`` and, per reason, in
``techne_gateway_events_rejected_total``. ``detail`` never holds a secret, a signature or an
input value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from core import metrics

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


def answer(status: int, body: dict[str, Any], venue: str, headers: dict[str, str] | None = None) -> JSONResponse:
    metrics.INGESTED.labels(venue=venue, status=str(status)).inc()
    return JSONResponse(body, status_code=status, headers=headers)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_capped(request: Request, cap: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it passes ``cap`` bytes (never read past it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, media: Sequence[str], cap: int, venue: str) -> bytes | JSONResponse:
    """The body of a request of one of the ``media`` types, at most ``cap`` bytes; else the
    refusal: 415 naming the accepted types, or 413 naming the limit."""
    if media_type(request) not in media:
        return problem(415, "unsupported_media_type", f"send {' or '.join(media)}", venue)
    try:
        return await read_capped(request, cap)
    except BodyTooLarge:
        return problem(413, "body_too_large", f"body exceeds {cap} bytes", venue)
