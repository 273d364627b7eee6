"""Canonical event routes: one event, or a batch (JSON array or NDJSON), Standard Webhooks signed.

Checks, in this order, for both routes: 404 unknown venue; 415 wrong media type; 413 body over
``max_body_bytes`` (not read past the cap); 401 signature rejected (bad, stale, future-dated,
missing headers) with its reason; then replay protection: a ``webhook-id`` already accepted is
answered **202** again with the answer it got then (same ``event_id``s, ``status: already_accepted``)
and produces nothing (202, not 200: senders and the demo count any 202 as delivered).

Bodies are parsed by the door (door.py): 400/413 naming the limit a body breaks (depth, number
or string size, keys, items, duplicate keys, NaN, lone surrogates, not UTF-8).

One event: 400 not JSON; 422 schema-invalid (``errors: [{field, message}]``); 503 +
``Retry-After`` when neither Kafka nor the spool can take it; 202 ``{event_id}`` once durable.

Batch (``application/json`` array, or ``application/x-ndjson`` one event per line): 400 when a
JSON array body is not JSON; 413 over ``max_batch_events``; each event is validated on its own.
If at least one is valid, the valid ones are written (all durably, in order) and the answer is
**202** with ``accepted``, ``rejected`` and ``results`` — one per index: ``{index, status:
"accepted", event_id}`` or ``{index, status: "rejected", error, errors}``. If none is valid,
nothing is written and the answer is **422** with the same ``results``. An NDJSON line that is
not JSON, or that the door refuses, is a rejected item (``malformed_json``, ``too_deep``…), not a
rejected request.

Event ids: the venue's ``event_id`` if sent, else uuid5 of venue + webhook-id (+ index for a
batch item), so a re-delivery keeps its ids even after the replay window.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import metrics
from core.door import Refused, parse_json, parse_ndjson
from producers.gateway.http import answer, media_type, problem, read_body, refusal
from producers.gateway.signatures import SignatureRejected, verify
from producers.ingest import EventRejected, Prepared, derived_event_id, prepare
from producers.spool import SpoolFull

if TYPE_CHECKING:
    from producers.gateway.app import Gateway

log = logging.getLogger("techne.gateway")
AUTH = "standard-webhooks"
NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/jsonlines")


async def _authenticated(gw: Gateway, request: Request, media: tuple[str, ...]) -> tuple[str, bytes] | Response:
    """Venue id and body of a signed request, or the refusal."""
    venue_id = request.path_params["venue_id"]
    if venue_id not in gw.venues:
        return problem(404, "unknown_venue", f"no venue '{venue_id}'", "unknown")
    body = await read_body(request, media, gw.settings.max_body_bytes, venue_id)
    if isinstance(body, Response):
        return body
    try:
        verify(body, request.headers, gw.settings.venue_secrets.get(venue_id, []))
    except SignatureRejected as exc:
        log.info("signature rejected venue=%s reason=%s", venue_id, exc)
        return problem(401, "invalid_signature", str(exc), venue_id)
    return venue_id, body


def replayed(venue_id: str, earlier: dict[str, Any]) -> JSONResponse:
    """The first answer again: 202, or 200 for a delivery that recorded no event (as it was)."""
    metrics.WEBHOOK_REPLAYS.labels(venue=venue_id).inc()
    return answer(200 if earlier.get("event_ids") == [] else 202, {**earlier, "status": "already_accepted"}, venue_id)


async def deliver(gw: Gateway, records: list[Prepared], venue_id: str) -> Response | None:
    """Make ``records`` durable; the 503 answer if there is no room anywhere, else None."""
    try:
        await gw.delivery.deliver(records)
    except SpoolFull as exc:
        log.warning("spool full, refusing venue=%s events=%d", venue_id, len(records))
        return problem(503, "spool_full", f"Kafka unavailable and {exc}; retry later", venue_id)
    for r in records:
        metrics.INGEST_EVENTS.labels(venue=venue_id, event_type=r.event_type).inc()
    metrics.LAST_EVENT.labels(venue=venue_id).set_to_current_time()
    return None


async def post_event(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    checked = await _authenticated(gw, request, ("application/json",))
    if isinstance(checked, Response):
        return checked
    venue_id, body = checked
    webhook_id = request.headers["webhook-id"]
    async with gw.ledger.claim(venue_id, webhook_id) as earlier:
        if earlier is not None:
            return replayed(venue_id, earlier)
        try:
            payload = parse_json(body, gw.limits)
        except Refused as exc:
            return refusal(exc, venue_id)
        try:
            record = prepare(payload, venue_id=venue_id, subject_key=gw.subject_key, auth=AUTH,
                             fallback_id=derived_event_id(venue_id, webhook_id))
        except EventRejected as exc:
            return problem(422, "schema_invalid", "event does not match its schema", venue_id, errors=exc.errors)
        refused = await deliver(gw, [record], venue_id)
        if refused is not None:
            return refused
        result = {"status": "accepted", "event_id": record.event_id}
        gw.ledger.put(venue_id, webhook_id, result)
        return answer(202, result, venue_id)


def _items(gw: Gateway, body: bytes, ndjson: bool) -> list[Any] | str:
    """The batch's items (an NDJSON line the door refuses is a :class:`Refused` item), or an
    error; :class:`Refused` for a JSON body the door refuses."""
    if ndjson:
        return parse_ndjson(body, gw.limits)
    parsed = parse_json(body, gw.limits)
    return parsed if isinstance(parsed, list) else "body must be a JSON array of events"


async def post_batch(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    checked = await _authenticated(gw, request, ("application/json", *NDJSON))
    if isinstance(checked, Response):
        return checked
    venue_id, body = checked
    webhook_id = request.headers["webhook-id"]
    async with gw.ledger.claim(venue_id, webhook_id) as earlier:
        if earlier is not None:
            return replayed(venue_id, earlier)
        try:
            items = _items(gw, body, media_type(request) in NDJSON)
        except Refused as exc:
            return refusal(exc, venue_id)
        if isinstance(items, str):
            return problem(422, "not_a_batch", items, venue_id)
        if not items:
            return problem(422, "empty_batch", "the batch holds no event", venue_id)
        if len(items) > gw.settings.max_batch_events:
            return problem(413, "batch_too_large", f"more than {gw.settings.max_batch_events} events", venue_id,
                           limit="batch_events", max=gw.settings.max_batch_events)
        records: list[Prepared] = []
        results: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if isinstance(item, Refused):
                results.append({"index": index, "status": "rejected", "error": item.error,
                                "errors": [{"field": "(line)", "message": item.detail}]})
                continue
            try:
                record = prepare(item, venue_id=venue_id, subject_key=gw.subject_key, auth=AUTH,
                                 fallback_id=derived_event_id(venue_id, webhook_id, str(index)))
            except EventRejected as exc:
                results.append({"index": index, "status": "rejected", "error": "schema_invalid", "errors": exc.errors})
                continue
            records.append(record)
            results.append({"index": index, "status": "accepted", "event_id": record.event_id})
        rejected = len(items) - len(records)
        if rejected:
            metrics.INGEST_REJECTED.labels(venue=venue_id, reason="batch_item_invalid").inc(rejected)
        summary: dict[str, Any] = {"accepted": len(records), "rejected": rejected, "results": results}
        if not records:
            return problem(422, "schema_invalid", "no event of the batch is valid; nothing was written", venue_id,
                           accepted=0, rejected=rejected, results=results)
        refused = await deliver(gw, records, venue_id)
        if refused is not None:
            return refused
        result = {"status": "accepted", **summary}
        gw.ledger.put(venue_id, webhook_id, result)
        return answer(202, result, venue_id)
