"""Webhook gateway: ``POST /v1/venues/{venue_id}/events`` takes one signed event.

Answers, in the order they are checked:

* 404 unknown venue; 415 not ``application/json``; 413 body over ``max_body_bytes`` (the body
  is not read past the cap);
* 401 signature rejected (bad, stale or future-dated, missing headers), with the reason;
* 400 body is not JSON; 422 schema-invalid, listing each failing field path (no input echoed);
* 503 with ``Retry-After`` when Kafka did not acknowledge in time;
* 202 once Kafka acknowledged the write (idempotent producer, ``acks=all``), with ``event_id``.

A rejected request writes nothing to Kafka. Logs carry venue ids and reasons only: never a
secret, a signature or a raw identifier.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from prometheus_client import make_asgi_app
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from producers.gateway.signatures import SignatureRejected, verify
from producers.kafka import EventProducer, ProduceFailed
from schemas import CATALOGUE
from schemas.models import INCOMING, to_record
from streams.topics import raw_topic
from techne import metrics
from techne.errors import InvalidMessage
from techne.identity import subject_ref
from techne.settings import Settings
from techne.venues import load_venues

log = logging.getLogger("techne.gateway")
EVENT_ID_NAMESPACE = uuid.UUID("6f1c63e4-5a8e-4d1e-9d0b-0b8e7f2a9c11")


class BodyTooLarge(Exception):
    pass


def _problem(status: int, error: str, detail: str, venue: str, **extra: Any) -> JSONResponse:
    metrics.INGESTED.labels(venue=venue, status=str(status)).inc()
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


async def _read_capped(request: Request, cap: int) -> bytes:
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


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field paths and messages of a validation error, without the offending input values."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in ("ticket.order_placed", "consent.granted", "consent.withdrawn"):
            loc = loc[1:]  # drop the discriminator tag pydantic inserts
        out.append({"field": ".".join(loc) or "(body)", "message": err["msg"]})
    return out


def create_app(settings: Settings, producer: EventProducer | None = None) -> Starlette:
    """Build the gateway. ``producer`` defaults to one on ``settings.bootstrap``."""
    venues = load_venues(settings.venues_file)
    subject_key = settings.require_subject_key()
    kafka = producer or EventProducer(settings.bootstrap, timeout=settings.produce_timeout_s,
                                      auth=settings.kafka_auth())
    metrics.declare_venues(venues, settings.venue_silence_hours)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await kafka.start()
        try:
            yield
        finally:
            await kafka.stop()

    async def post_event(request: Request) -> JSONResponse:
        venue_id = request.path_params["venue_id"]
        if venue_id not in venues:
            return _problem(404, "unknown_venue", f"no venue '{venue_id}'", "unknown")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _problem(415, "unsupported_media_type", "send application/json", venue_id)
        try:
            body = await _read_capped(request, settings.max_body_bytes)
        except BodyTooLarge:
            return _problem(413, "body_too_large", f"body exceeds {settings.max_body_bytes} bytes", venue_id)
        try:
            verify(body, request.headers, settings.venue_secrets.get(venue_id, []))
        except SignatureRejected as exc:
            log.info("signature rejected venue=%s reason=%s", venue_id, exc)
            return _problem(401, "invalid_signature", str(exc), venue_id)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _problem(400, "malformed_json", f"line {getattr(exc, 'lineno', '?')}: not valid JSON", venue_id)
        try:
            event = INCOMING.validate_python(payload)
        except ValidationError as exc:
            return _problem(422, "schema_invalid", "event does not match its schema", venue_id,
                            errors=_field_errors(exc))
        webhook_id = request.headers["webhook-id"]
        name, record = to_record(event, venue_id=venue_id, received_at=datetime.now(UTC),
                                 fallback_id=uuid.uuid5(EVENT_ID_NAMESPACE, f"{venue_id}:{webhook_id}"))
        try:
            value = CATALOGUE.encode(name, record)
        except InvalidMessage as exc:
            return _problem(422, "schema_invalid", str(exc), venue_id)
        key = subject_ref(subject_key, venue_id, record["subject"]).encode()
        started = time.perf_counter()
        try:
            await kafka.send(raw_topic(venue_id), key=key, value=value)
        except ProduceFailed as exc:
            log.warning("kafka did not acknowledge venue=%s: %s", venue_id, exc)
            return _problem(503, "kafka_unavailable", "retry later", venue_id)
        metrics.PRODUCE_SECONDS.observe(time.perf_counter() - started)
        metrics.INGESTED.labels(venue=venue_id, status="202").inc()
        metrics.INGEST_EVENTS.labels(venue=venue_id, event_type=record["event_type"]).inc()
        metrics.LAST_EVENT.labels(venue=venue_id).set_to_current_time()
        return JSONResponse({"status": "accepted", "event_id": record["event_id"]}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/venues/{venue_id}/events", post_event, methods=["POST"]),
            Route("/healthz", health),
            Mount("/metrics", app=make_asgi_app()),
        ],
        lifespan=lifespan,
    )
