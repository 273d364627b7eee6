"""The gateway's published OpenAPI 3.1 spec (``/openapi.json``) and its docs page (``/docs``).

The event schemas come from the same pydantic models that validate requests (so the spec cannot
drift from what the gateway accepts); the routes' answers are written out here. ``/docs`` is one
self-contained HTML page (no external asset: it works offline) that fetches the spec and lists
every operation, its parameters, request body, answers and the event schemas.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Route

from schemas.models import INCOMING

DOCS_PAGE = Path(__file__).with_name("docs.html")
SIGNED: list[dict[str, list[str]]] = [{"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Problem")}}}


REFUSALS = {
    "400": _problem("Body is not JSON (or not UTF-8), or breaks a limit of the parsing door: `error` names it "
                    "(too_deep, number_too_long, string_too_long, too_many_keys, duplicate_key, non_finite_number, "
                    "invalid_text), `limit` and `max` give the bound."),
    "401": _problem("Signature rejected: bad, stale or future-dated (5-minute tolerance), or missing headers."),
    "404": _problem("Unknown venue."),
    "413": _problem("Body over the size cap, a batch over the event cap, or an array over the item cap "
                    "(`limit`, `max`)."),
    "408": _problem("Request head or body not received in time (30 s by default)."),
    "414": _problem("Request target over 32 KiB."),
    "431": _problem("Headers over 32 KiB in all, or more than 100 of them (`limit`, `max`)."),
    "415": _problem("Unsupported content type."),
    "422": _problem("Schema-invalid: `errors` lists field paths and messages (input values are never echoed)."),
    "503": {**_problem("Kafka unavailable and the spool is full: retry after `Retry-After` seconds."),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
}


def _x_keys(node: Any) -> Any:
    """The catalogue's ``techne.*`` schema annotations as OpenAPI ``x-`` extensions."""
    if isinstance(node, dict):
        return {(f"x-{k}" if k.startswith("techne.") else k): _x_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_x_keys(v) for v in node]
    return node


def _event_components() -> dict[str, Any]:
    schema = _x_keys(INCOMING.json_schema(ref_template="#/components/schemas/{model}"))
    defs = schema.pop("$defs")
    return {**defs, "Event": schema}


def _common_components() -> dict[str, Any]:
    error = {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}
    item = {"type": "object", "required": ["index", "status"], "properties": {
        "index": {"type": "integer"}, "status": {"enum": ["accepted", "rejected"]},
        "event_id": {"type": "string", "format": "uuid"}, "error": {"type": "string"},
        "errors": {"type": "array", "items": error}}}
    return {
        "Problem": {"type": "object", "required": ["error", "detail"], "properties": {
            "error": {"type": "string"}, "detail": {"type": "string"},
            "limit": {"type": "string", "description": "The limit the request breaks (depth, number_chars, "
                      "string_chars, keys, items, params, body_bytes, batch_events, header_bytes, headers…)."},
            "max": {"type": "integer", "description": "That limit's value."},
            "errors": {"type": "array", "items": error},
            "results": {"type": "array", "items": item}}},
        "Accepted": {"type": "object", "required": ["status"], "properties": {
            "status": {"enum": ["accepted", "already_accepted"]}, "event_id": {"type": "string", "format": "uuid"},
            "event_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}}}},
        "BatchResult": {"type": "object", "required": ["status", "accepted", "rejected", "results"], "properties": {
            "status": {"enum": ["accepted", "already_accepted"]}, "accepted": {"type": "integer"},
            "rejected": {"type": "integer"}, "results": {"type": "array", "items": item}}},
    }


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _venue(venues: tuple[str, ...]) -> dict[str, Any]:
    return {"name": "venue_id", "in": "path", "required": True, "schema": {"enum": list(venues)},
            "description": "Venue id of deploy/venues.yaml."}


def _event_paths(venues: tuple[str, ...]) -> dict[str, Any]:
    single = {
        "summary": "Send one event", "operationId": "postEvent", "tags": ["events"], "security": SIGNED,
        "parameters": [_venue(venues)],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Event")}}},
        "responses": {"202": _ok("Accepted", "Durably accepted (Kafka acknowledged, or spooled); or this "
                                             "webhook-id was already accepted (status already_accepted): "
                                             "same answer, nothing new."),
                      **REFUSALS},
    }
    batch = {
        "summary": "Send a batch of events (JSON array or NDJSON)", "operationId": "postBatch", "tags": ["events"],
        "description": "Each event is validated on its own. If any is valid, the valid ones are written and the "
                       "answer is 202 with one result per index; if none is, nothing is written (422).",
        "security": SIGNED, "parameters": [_venue(venues)],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "array", "items": _ref("Event"), "minItems": 1}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "One JSON event per line."}}}},
        "responses": {"202": _ok("BatchResult", "The valid events were durably accepted, per-index results; or "
                                                "this webhook-id was already accepted (status already_accepted)."),
                      **REFUSALS, "422": _ok("Problem", "No event of the batch is valid (per-index results).")},
    }
    return {"/v1/venues/{venue_id}/events": {"post": single}, "/v1/venues/{venue_id}/events/batch": {"post": batch}}


@cache
def spec(venues: tuple[str, ...]) -> dict[str, Any]:
    """The OpenAPI document for these venues (built once)."""
    from producers.gateway import collector, sources

    header = {"type": "apiKey", "in": "header"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Techné audience bus — venue gateway", "version": "1",
                 "description": "Signed venue events in (Standard Webhooks), Avro records on the venue's raw "
                                "topic out. See docs/venue-integration.md."},
        "paths": {**_event_paths(venues), **sources.openapi_paths(venues), **collector.openapi_paths(),
                  "/healthz": {"get": {"summary": "Liveness", "operationId": "health", "tags": ["ops"],
                                       "responses": {"200": {"description": "Up"}}}}},
        "components": {
            "schemas": {**_event_components(), **_common_components()},
            "securitySchemes": {
                "webhookId": {**header, "name": "webhook-id", "description": "Unique message id (replays)."},
                "webhookTimestamp": {**header, "name": "webhook-timestamp", "description": "Unix seconds."},
                "webhookSignature": {**header, "name": "webhook-signature",
                                     "description": "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>"},
                **sources.security_schemes(),
            },
        },
    }


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(spec(tuple(sorted(request.app.state.gateway.venues))))


async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(DOCS_PAGE.read_text(encoding="utf-8"))


def routes() -> list[BaseRoute]:
    return [Route("/openapi.json", openapi_json), Route("/docs", docs)]
