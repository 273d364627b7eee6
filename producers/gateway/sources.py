"""Vendor push route: ``POST /v1/venues/{venue_id}/sources/{source}`` (adapters registry).

Checks, in order: 404 unknown venue or source; 403 client address outside the source's IP
allow-list (when one is configured); 415 media type; 413 body cap; 401 authentication as the
source does it (HMAC, Basic, API key — the reason, never a secret); 400/413 a body the parsing
door (door.py) refuses, naming the limit; then replay protection on
the vendor's delivery id (or the body's SHA-256 when the vendor sends none): a known delivery is
answered 202 again with its first answer (``already_accepted``) and produces nothing. 422: the
payload is not one the adapter understands, or a mapped event does not fit the catalogue —
nothing of the delivery is written; 422 ``unmapped_question`` (``detail`` in French,
``detail_en``): the delivery carries an opt-in question the venue's consent mapping neither
maps nor ignores (producers/adapters/consent.py) — nothing written either. Consent events from
the delivery's opt-ins come before its other events (same person, same partition: applied first).
202 ``{event_ids}`` once durable (Kafka or spool); 200 with no event for a notification the
catalogue has no use for. Each event's Kafka header ``auth`` says how it was authenticated.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.door import Refused, parse_json
from producers.adapters import PUSH, AuthRejected, PayloadRejected
from producers.adapters.consent import UnmappedQuestion, consent_events
from producers.gateway.events import deliver, replayed
from producers.gateway.http import answer, problem, read_body, refusal
from producers.ingest import EventRejected, Prepared, derived_event_id, prepare

if TYPE_CHECKING:
    from producers.gateway.app import Gateway

log = logging.getLogger("techne.gateway")


def _secrets(gw: Gateway, venue_id: str, source: str) -> list[SecretStr]:
    if source == "canonical":
        return gw.settings.venue_secrets.get(venue_id, [])
    return gw.settings.source_secrets.get(venue_id, {}).get(source, [])


async def post_source(request: Request) -> Response:
    from producers.adapters.base import ip_allowed

    gw: Gateway = request.app.state.gateway
    venue_id, source = request.path_params["venue_id"], request.path_params["source"]
    if venue_id not in gw.venues:
        return problem(404, "unknown_venue", f"no venue '{venue_id}'", "unknown")
    adapter = PUSH.get(source)
    if adapter is None:
        return problem(404, "unknown_source", f"no source '{source}' (known: {', '.join(sorted(PUSH))})", venue_id)
    allowed = gw.settings.source_allowed_ips.get(venue_id, {}).get(source, [])
    if not ip_allowed(request.client.host if request.client else None, allowed):
        return problem(403, "address_not_allowed", "client address outside this source's allow-list", venue_id)
    body = await read_body(request, adapter.media_types, gw.settings.max_body_bytes, venue_id)
    if isinstance(body, Response):
        return body
    try:
        how = adapter.authenticate(body, request.headers, _secrets(gw, venue_id, source))
    except AuthRejected as exc:
        log.info("source auth rejected venue=%s source=%s reason=%s", venue_id, source, exc)
        return problem(401, "unauthenticated", str(exc), venue_id)
    try:  # the adapters parse JSON themselves: only a body the door accepts reaches them
        parse_json(body, gw.limits)
    except Refused as exc:
        return refusal(exc, venue_id)
    delivery = adapter.delivery_id(body, request.headers) or "sha256:" + hashlib.sha256(body).hexdigest()
    async with gw.ledger.claim(f"{venue_id}/{source}", delivery) as earlier:
        if earlier is not None:
            return replayed(venue_id, earlier)
        try:
            mapped = adapter.events(body)
            mapped = consent_events(source, adapter.opt_ins(body), gw.consent.mapping(venue_id, source)) + mapped
        except PayloadRejected as exc:
            return problem(422, "unsupported_payload", str(exc), venue_id)
        except UnmappedQuestion as exc:
            return problem(422, "unmapped_question", exc.fr, venue_id, detail_en=exc.en, questions=exc.questions)
        records: list[Prepared] = []
        errors: list[dict[str, Any]] = []
        for index, ev in enumerate(mapped):
            try:
                records.append(prepare(ev.payload, venue_id=venue_id, subject_key=gw.subject_key, auth=how,
                                       fallback_id=derived_event_id(venue_id, source, ev.key or delivery)))
            except EventRejected as exc:
                errors.append({"index": index, "errors": exc.errors})
        if errors:
            return problem(422, "schema_invalid", "mapped events do not fit the catalogue; nothing was written",
                           venue_id, results=errors)
        refused = await deliver(gw, records, venue_id)
        if refused is not None:
            return refused
        result = {"status": "accepted", "event_ids": [r.event_id for r in records]}
        gw.ledger.put(f"{venue_id}/{source}", delivery, result)
        return answer(202 if records else 200, result, venue_id)


def routes() -> list[BaseRoute]:
    return [Route("/v1/venues/{venue_id}/sources/{source}", post_source, methods=["POST"])]


def security_schemes() -> dict[str, Any]:
    return {"helloassoSignature": {"type": "apiKey", "in": "header", "name": "x-ha-signature",
                                   "description": PUSH["helloasso"].auth_doc},
            "basicAuth": {"type": "http", "scheme": "basic", "description": "SecuTix: user:password."},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "SecuTix API key."}}


def openapi_paths(venues: tuple[str, ...]) -> dict[str, Any]:
    sources = "; ".join(f"`{a.name}`: {a.description} Auth: {a.auth_doc}" for a in PUSH.values())
    problem_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return {"/v1/venues/{venue_id}/sources/{source}": {"post": {
        "summary": "Vendor push notification", "operationId": "postSource", "tags": ["vendors"],
        "description": "A vendor's own notification format, mapped to canonical events. Sources: " + sources,
        "security": [{"helloassoSignature": []}, {"basicAuth": []}, {"apiKey": []},
                     {"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}],
        "parameters": [
            {"name": "venue_id", "in": "path", "required": True, "schema": {"enum": list(venues)}},
            {"name": "source", "in": "path", "required": True, "schema": {"enum": sorted(PUSH)}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {
            "202": {"description": "Mapped events durably accepted.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
            "200": {"description": "A notification with no event to record."},
            **{code: {"description": text, **problem_ref} for code, text in [
                ("401", "Authentication rejected."), ("403", "Client address not allowed."),
                ("404", "Unknown venue or source."), ("413", "Body too large."), ("415", "Not JSON."),
                ("422", "Payload not understood, mapped events invalid, or an opt-in question the venue's "
                        "consent mapping does not know (unmapped_question)."), ("503", "Spool full: retry later.")]},
        }}}}
