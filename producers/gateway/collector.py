"""Web tracking: the Matomo HTTP tracking API and a beacon collector, per site key, with CORS.

Sites are configured in ``TECHNE_WEB_SITES`` (site key -> venue, allowed origins and an optional
numeric Matomo ``id``, by which the site is also found). A site key is public (it sits in the
page's JavaScript): it names the site, and the ``Origin`` check keeps
other sites' pages from sending under it. Routes:

* ``GET|POST /matomo.php`` (``idsite`` = the site key) and ``/v1/sites/{site_key}/matomo.php``:
  a Matomo tracker's requests — query string, form body (what ``sendBeacon`` posts), or bulk JSON
  ``{"requests": ["?…", …]}`` (matomo.py maps them). Answer 204 (what trackers expect).
* ``POST /v1/collect/{site_key}``: canonical ``web.*`` events as JSON (one object or an array),
  sent as ``application/json``, ``text/plain`` (``navigator.sendBeacon`` with a string, no
  preflight) or with no ``Content-Type`` (``sendBeacon`` with an untyped ``Blob``). Answer 202
  with ``event_ids``.
* ``OPTIONS`` on both: the CORS preflight for allowed origins.

Checks: 404 unknown site; 403 ``Origin`` not allowed for the site (requests without ``Origin``
— servers, curl — are accepted: the key still names the site); 413; 415; 400 not JSON or over a
limit of the parsing door (door.py: depth, sizes, more than 200 query/form parameters…); 422
invalid (nothing of the request written); 503 when neither Kafka nor the spool can take it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.door import Refused, parse_json, parse_params
from core.errors import ConfigError
from producers.gateway.events import deliver
from producers.gateway.http import (
    BodyTimeout,
    BodyTooLarge,
    answer,
    body_timeout,
    problem,
    read_body,
    read_capped,
    refusal,
)
from producers.ingest import EventRejected, Prepared, derived_event_id, prepare
from producers.matomo import to_events

if TYPE_CHECKING:
    from producers.gateway.app import Gateway

FORM = "application/x-www-form-urlencoded"
BEACON_MEDIA = ("application/json", "text/plain")


def _cors(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", "Access-Control-Allow-Credentials": "true"}


def site_index(web_sites: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Sites by key and by numeric Matomo id (a site's optional ``"id"``: Matomo trackers and SDKs
    send ``idsite`` as a number); :class:`ConfigError` for an id that is not a positive integer
    or that names two sites, or collides with a key."""
    index: dict[str, Mapping[str, Any]] = dict(web_sites)
    for key, site in web_sites.items():
        numeric = site.get("id")
        if numeric is None:
            continue
        numeric = str(numeric)
        if not numeric.isdigit() or not numeric.isascii() or int(numeric) < 1:
            raise ConfigError(f"TECHNE_WEB_SITES: site {key!r}: id must be a positive integer, not {numeric!r}")
        if numeric in index:
            raise ConfigError(f"TECHNE_WEB_SITES: site {key!r}: id {numeric} already names another site")
        index[numeric] = site
    return index


def _site(gw: Gateway, key: str | None, request: Request) -> tuple[str, str | None] | Response:
    """The site's venue and the allowed origin of this request, or the refusal."""
    site = gw.sites.get(key or "")
    if site is None or str(site.get("venue")) not in gw.venues:
        return problem(404, "unknown_site", "no such site key", "unknown")
    venue = str(site["venue"])
    origin = request.headers.get("origin")
    allowed = site.get("origins", [])
    if origin is not None and origin not in (allowed if isinstance(allowed, list) else [allowed]):
        return problem(403, "origin_not_allowed", "this origin may not send for this site", venue)
    return venue, origin


async def preflight(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        query = parse_params(request.url.query, gw.limits)
    except Refused as exc:
        return refusal(exc, "unknown")
    found = _site(gw, request.path_params.get("site_key") or query.get("idsite"), request)
    if isinstance(found, Response):
        return found
    return Response(status_code=204, headers={**_cors(found[1]), "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                                              "Access-Control-Allow-Headers": "content-type",
                                              "Access-Control-Max-Age": "86400"})


async def _write(gw: Gateway, venue: str, origin: str | None, records: list[Prepared],
                 status: int) -> Response:
    refused = await deliver(gw, records, venue)
    if refused is not None:
        return refused
    if status == 204:
        answer(204, {}, venue)  # counts the request
        return Response(status_code=204, headers=_cors(origin))
    return answer(202, {"status": "accepted", "event_ids": [r.event_id for r in records]}, venue, _cors(origin))


async def matomo(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        body = await read_capped(request, gw.settings.max_body_bytes) if request.method == "POST" else b""
    except BodyTimeout:
        return body_timeout(request, "unknown")
    except BodyTooLarge:
        return problem(413, "body_too_large", f"body exceeds {gw.settings.max_body_bytes} bytes", "unknown",
                       limit="body_bytes", max=gw.settings.max_body_bytes)
    requests: list[dict[str, str]] = []
    try:
        if body.lstrip().startswith(b"{"):
            bulk = parse_json(body, gw.limits)
            listed = bulk.get("requests") if isinstance(bulk, dict) else None
            if not isinstance(listed, list) or not all(isinstance(q, str) for q in listed):
                return problem(400, "malformed_json", 'bulk body must be {"requests": ["?…", …]}', "unknown")
            if len(listed) > gw.settings.max_batch_events:
                return problem(413, "batch_too_large", f"more than {gw.settings.max_batch_events} requests",
                               "unknown", limit="batch_events", max=gw.settings.max_batch_events)
            requests = [parse_params(q, gw.limits) for q in listed]
        else:
            merged = parse_params(request.url.query, gw.limits)
            if body:
                merged.update(parse_params(body.decode("utf-8", errors="replace"), gw.limits))
            requests = [merged]
    except Refused as exc:
        return refusal(exc, "unknown")
    path_key = request.path_params.get("site_key")
    records: list[Prepared] = []
    venue, origin = "unknown", None
    sites: list[tuple[str, str | None]] = []
    for params in requests:
        found = _site(gw, path_key or params.get("idsite"), request)
        if isinstance(found, Response):
            return found
        sites.append(found)
        venue, origin = found
    for index, payload, hit in to_events(requests, user_agent=request.headers.get("user-agent")):
        venue, origin = sites[index]
        try:
            records.append(prepare(payload, venue_id=venue, subject_key=gw.subject_key, auth="site-key:matomo",
                                   fallback_id=derived_event_id(venue, "matomo", hit)))
        except EventRejected as exc:
            return problem(422, "schema_invalid", "tracking request does not map to a valid event", venue,
                           errors=exc.errors, headers=_cors(origin))
    return await _write(gw, venue, origin, records, 204)


async def collect(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    found = _site(gw, request.path_params["site_key"], request)
    if isinstance(found, Response):
        return found
    venue, origin = found
    # "": no Content-Type at all, what navigator.sendBeacon sends for an untyped Blob
    body = await read_body(request, (*BEACON_MEDIA, ""), gw.settings.max_body_bytes, venue)
    if isinstance(body, Response):
        return body
    try:
        payload = parse_json(body, gw.limits)
    except Refused as exc:
        return refusal(exc, venue, headers=_cors(origin))
    items: list[Any] = payload if isinstance(payload, list) else [payload]
    if len(items) > gw.settings.max_batch_events:
        return problem(413, "batch_too_large", f"more than {gw.settings.max_batch_events} events", venue,
                       headers=_cors(origin), limit="batch_events", max=gw.settings.max_batch_events)
    records, errors = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not str(item.get("type", "")).startswith("web."):
            errors.append({"index": index, "errors": [{"field": "type", "message": "only web.* events here"}]})
            continue
        try:
            records.append(prepare(item, venue_id=venue, subject_key=gw.subject_key, auth="site-key:beacon",
                                   fallback_id=derived_event_id(venue, "beacon", json.dumps(item, sort_keys=True))))
        except EventRejected as exc:
            errors.append({"index": index, "errors": exc.errors})
    if errors or not records:
        return problem(422, "schema_invalid", "invalid web event(s); nothing was written", venue, results=errors,
                       headers=_cors(origin))
    return await _write(gw, venue, origin, records, 202)


def routes() -> list[BaseRoute]:
    return [Route("/matomo.php", matomo, methods=["GET", "POST"]), Route("/matomo.php", preflight, methods=["OPTIONS"]),
            Route("/v1/sites/{site_key}/matomo.php", matomo, methods=["GET", "POST"]),
            Route("/v1/sites/{site_key}/matomo.php", preflight, methods=["OPTIONS"]),
            Route("/v1/collect/{site_key}", collect, methods=["POST"]),
            Route("/v1/collect/{site_key}", preflight, methods=["OPTIONS"])]


def openapi_paths() -> dict[str, Any]:
    problem_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    refusals = {code: {"description": text, **problem_ref} for code, text in [
        ("400", "Not JSON."), ("403", "Origin not allowed for this site."), ("404", "Unknown site key."),
        ("413", "Body too large."), ("415", "Unsupported content type."), ("422", "Invalid web event."),
        ("503", "Spool full: retry later.")]}
    site = {"name": "site_key", "in": "path", "required": True, "schema": {"type": "string"}}
    matomo_op = {"summary": "Matomo HTTP tracking API", "tags": ["web"],
                 "description": "Matomo tracker requests (query string, form body or bulk JSON).",
                 "parameters": [{"name": "idsite", "in": "query", "schema": {"type": "string"},
                                 "description": "The bus's site key."},
                                {"name": "rec", "in": "query", "schema": {"type": "string"}},
                                {"name": "url", "in": "query", "schema": {"type": "string"}}],
                 "responses": {"204": {"description": "Recorded (or nothing to record)."}, **refusals}}
    return {
        "/matomo.php": {"get": {**matomo_op, "operationId": "matomoGet"},
                        "post": {**matomo_op, "operationId": "matomoPost", "requestBody": {"content": {
                            FORM: {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
                            "application/json": {"schema": {"type": "object", "properties": {
                                "requests": {"type": "array", "items": {"type": "string"}}}}}}}}},
        "/v1/collect/{site_key}": {"post": {
            "summary": "Web beacon (canonical web.* events)", "operationId": "collect", "tags": ["web"],
            "parameters": [site],
            "requestBody": {"required": True, "content": {m: {"schema": {"$ref": "#/components/schemas/Event"}}
                                                          for m in BEACON_MEDIA}},
            "responses": {"202": {"description": "Accepted.", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Accepted"}}}}, **refusals}}},
    }
