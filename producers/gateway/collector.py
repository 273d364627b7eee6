"""Web tracking: the Matomo HTTP tracking API and a beacon collector, per site key, with CORS.

Sites are configured in ``TECHNE_WEB_SITES`` (site key -> venue and allowed origins). A site key
is public (it sits in the page's JavaScript): it names the site, and the ``Origin`` check keeps
other sites' pages from sending under it. Routes:

* ``GET|POST /matomo.php`` (``idsite`` = the site key) and ``/v1/sites/{site_key}/matomo.php``:
  a Matomo tracker's requests — query string, form body (what ``sendBeacon`` posts), or bulk JSON
  ``{"requests": ["?…", …]}`` (matomo.py maps them). Answer 204 (what trackers expect).
* ``POST /v1/collect/{site_key}``: canonical ``web.*`` events as JSON (one object or an array),
  sent as ``application/json`` or ``text/plain`` (``navigator.sendBeacon`` with a string, no
  preflight). Answer 202 with ``event_ids``.
* ``OPTIONS`` on both: the CORS preflight for allowed origins.

Checks: 404 unknown site; 403 ``Origin`` not allowed for the site (requests without ``Origin``
— servers, curl — are accepted: the key still names the site); 413; 415; 400 not JSON; 422
invalid (nothing of the request written); 503 when neither Kafka nor the spool can take it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from producers.gateway.events import deliver
from producers.gateway.http import BodyTooLarge, answer, problem, read_body, read_capped
from producers.ingest import EventRejected, Prepared, derived_event_id, prepare
from producers.matomo import parse_request, to_events

if TYPE_CHECKING:
    from producers.gateway.app import Gateway

FORM = "application/x-www-form-urlencoded"
BEACON_MEDIA = ("application/json", "text/plain")


def _cors(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", "Access-Control-Allow-Credentials": "true"}


def _site(gw: Gateway, key: str | None, request: Request) -> tuple[str, str | None] | Response:
    """The site's venue and the allowed origin of this request, or the refusal."""
    site = gw.settings.web_sites.get(key or "")
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
    found = _site(gw, request.path_params.get("site_key") or request.query_params.get("idsite"), request)
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
    except BodyTooLarge:
        return problem(413, "body_too_large", f"body exceeds {gw.settings.max_body_bytes} bytes", "unknown")
    requests: list[dict[str, str]] = []
    if body.lstrip().startswith(b"{"):
        try:
            bulk = json.loads(body)
            requests = [parse_request(str(q)) for q in bulk["requests"]]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            return problem(400, "malformed_json", 'bulk body must be {"requests": ["?…", …]}', "unknown")
    else:
        merged = dict(request.query_params)
        if body:
            merged.update(parse_request(body.decode("utf-8", errors="replace")))
        requests = [merged]
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
    body = await read_body(request, BEACON_MEDIA, gw.settings.max_body_bytes, venue)
    if isinstance(body, Response):
        return body
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return problem(400, "malformed_json", "body is not JSON", venue, headers=_cors(origin))
    items: list[Any] = payload if isinstance(payload, list) else [payload]
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
