"""Read-only Confluent Schema Registry API over the catalogue, so partners' standard clients
(``confluent-kafka``'s ``SchemaRegistryClient``, Kafka Connect, ksqlDB…) resolve our schema ids.

Served routes (the subset clients use)::

    GET  /schemas/ids/{id}                        {"schema": "<self-contained Avro JSON>"}
    GET  /schemas/ids/{id}/versions               [{"subject": ..., "version": ...}, ...]
    GET  /schemas/ids/{id}/subjects               [subject, ...]
    GET  /subjects                                [subject, ...]
    GET  /subjects/{subject}/versions             [1, 2, ...]
    GET  /subjects/{subject}/versions/{version}   {"subject", "version", "id", "schema"} (version or "latest")
    GET  /subjects/{subject}/versions/{version}/schema
    POST /subjects/{subject}                      look a schema up: its id and version under the subject
    POST /subjects/{subject}/versions             "register": answers the id of an already registered schema,
                                                  422 (error 42205, read-only) for anything new
    GET  /config, /config/{subject}, /mode        BACKWARD, READONLY

Subjects, all resolvable: the record name (RecordNameStrategy, ``org.techne.partner.SharedTicketOrder``);
``partner.<id>.<stream>-value`` (TopicNameStrategy, for the partner topics: one schema per topic);
``<topic>-<record name>`` (TopicRecordNameStrategy, e.g. for multi-schema ``raw.<venue>`` topics).
Ids are the manifest's stable ids; versions are the schema's own versions. Errors use Confluent's
``{"error_code", "message"}`` bodies (40401 subject, 40402 version, 40403 schema not found).
Bodies, and the schema text inside them, go through the parsing door (core/door.py): a body over
``MAX_BODY_BYTES`` is 413 (41301), one the door refuses (too deep, huge numbers…) 422 (42201)
naming the limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.door import Refused, parse_json
from schemas.codec import CATALOGUE, Catalogue, SchemaEntry
from schemas.kinds import KINDS
from schemas.loader import fingerprint
from schemas.models import ERASURE_COMMAND

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_BODY_BYTES = 1_048_576
PARTNER_STREAM_SCHEMAS = {**{kind.stream: kind.schema for kind in KINDS}, "erasure": ERASURE_COMMAND}
"""Partner stream (``partner.<id>.<stream>``: every kind's, :data:`schemas.kinds.KINDS`, and the
erasure commands) -> the one schema its values use."""
_PARTNER_TOPIC = re.compile(r"^partner\.([a-z0-9][a-z0-9_-]{1,62})\.([a-z_]+)-value$")
_TOPIC_RECORD = re.compile(r"^[A-Za-z0-9._-]+?-((?:[A-Za-z_][A-Za-z0-9_]*\.)+[A-Za-z_][A-Za-z0-9_]*)$")


class _Answer(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def schema_text(entry: SchemaEntry) -> str:
    """The self-contained schema as the registry serves it (compact JSON)."""
    return json.dumps(entry.raw, separators=(",", ":"), ensure_ascii=False)


class Registry:
    """Subject resolution over a catalogue (pure; the app below is a thin HTTP shell)."""

    def __init__(self, catalogue: Catalogue = CATALOGUE, partners: list[str] | None = None) -> None:
        self.catalogue = catalogue
        self.partners = sorted(partners or [])

    def schema_of(self, subject: str) -> str:
        """The schema full name a subject resolves to (raises 40401 if none)."""
        names = set(self.catalogue.names())
        if subject in names:
            return subject
        m = _PARTNER_TOPIC.match(subject)
        if m and m.group(2) in PARTNER_STREAM_SCHEMAS:
            return PARTNER_STREAM_SCHEMAS[m.group(2)]
        m = _TOPIC_RECORD.match(subject)
        if m and m.group(1) in names:
            return m.group(1)
        raise _Answer(404, 40401, f"Subject '{subject}' not found.")

    def subjects(self) -> list[str]:
        topic_subjects = [f"partner.{p}.{stream}-value" for p in self.partners for stream in PARTNER_STREAM_SCHEMAS]
        return sorted([*self.catalogue.names(), *topic_subjects])

    def subjects_of(self, entry: SchemaEntry) -> list[str]:
        return [s for s in self.subjects() if self.schema_of(s) == entry.name]

    def entry(self, schema_id: int) -> SchemaEntry:
        try:
            return self.catalogue.by_id(schema_id)
        except KeyError:
            raise _Answer(404, 40403, f"Schema {schema_id} not found") from None

    def version(self, subject: str, version: str) -> SchemaEntry:
        versions = self.catalogue.versions(self.schema_of(subject))
        if version in ("latest", "-1"):
            return versions[-1]
        for e in versions:
            if str(e.version) == version:
                return e
        raise _Answer(404, 40402, f"Version {version} not found.")

    def lookup(self, subject: str, schema: str) -> SchemaEntry:
        """The version of ``subject`` whose schema is ``schema`` (same Parsing Canonical Form)."""
        try:
            wanted = fingerprint(parse_json(schema.encode("utf-8", errors="replace")))
        except Refused as exc:
            raise _Answer(422, 42201, f"Invalid schema: {exc.detail}") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _Answer(422, 42201, f"Invalid schema: {type(exc).__name__}") from exc
        for e in self.catalogue.versions(self.schema_of(subject)):
            if fingerprint(e.raw) == wanted:
                return e
        raise _Answer(404, 40403, "Schema not found")


def _body(entry: SchemaEntry, subject: str) -> dict[str, Any]:
    return {"subject": subject, "version": entry.version, "id": entry.schema_id, "schema": schema_text(entry)}


def create_app(catalogue: Catalogue = CATALOGUE, partners: list[str] | None = None) -> Starlette:
    """The registry ASGI app over ``catalogue``; ``partners`` lists the topic subjects."""
    registry = Registry(catalogue, partners)

    def ok(content: Any) -> JSONResponse:
        return JSONResponse(content, media_type=MEDIA_TYPE)

    def handler(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return ok(await fn(request, **request.path_params))
            except _Answer as answer:
                return JSONResponse({"error_code": answer.code, "message": answer.message},
                                    status_code=answer.status, media_type=MEDIA_TYPE)
        return endpoint

    async def schema_by_id(request: Request, schema_id: int) -> Any:
        return {"schema": schema_text(registry.entry(schema_id))}

    async def id_versions(request: Request, schema_id: int) -> Any:
        entry = registry.entry(schema_id)
        return [{"subject": s, "version": entry.version} for s in registry.subjects_of(entry)]

    async def id_subjects(request: Request, schema_id: int) -> Any:
        return registry.subjects_of(registry.entry(schema_id))

    async def subjects(request: Request) -> Any:
        return registry.subjects()

    async def versions(request: Request, subject: str) -> Any:
        return [e.version for e in catalogue.versions(registry.schema_of(subject))]

    async def version(request: Request, subject: str, version: str) -> Any:
        return _body(registry.version(subject, version), subject)

    async def version_schema(request: Request, subject: str, version: str) -> Any:
        return registry.version(subject, version).raw

    async def lookup(request: Request, subject: str) -> Any:
        payload = await _json(request)
        return _body(registry.lookup(subject, str(payload.get("schema", ""))), subject)

    async def register(request: Request, subject: str) -> Any:
        payload = await _json(request)
        try:
            return {"id": registry.lookup(subject, str(payload.get("schema", ""))).schema_id}
        except _Answer as answer:
            if answer.code in (40401, 40403):
                raise _Answer(422, 42205, f"Subject {subject} is in read-only mode: schemas come from the "
                                          "catalogue (schemas/avro), not from clients") from None
            raise

    async def config(request: Request, subject: str | None = None) -> Any:
        if subject is not None:
            registry.schema_of(subject)
        return {"compatibilityLevel": "BACKWARD"}

    async def mode(request: Request) -> Any:
        return {"mode": "READONLY"}

    async def root(request: Request) -> Any:
        return {}

    return Starlette(routes=[
        Route("/", handler(root)),
        Route("/schemas/ids/{schema_id:int}", handler(schema_by_id)),
        Route("/schemas/ids/{schema_id:int}/versions", handler(id_versions)),
        Route("/schemas/ids/{schema_id:int}/subjects", handler(id_subjects)),
        Route("/subjects", handler(subjects)),
        Route("/subjects/{subject}", handler(lookup), methods=["POST"]),
        Route("/subjects/{subject}/versions", handler(versions)),
        Route("/subjects/{subject}/versions", handler(register), methods=["POST"]),
        Route("/subjects/{subject}/versions/{version}", handler(version)),
        Route("/subjects/{subject}/versions/{version}/schema", handler(version_schema)),
        Route("/config", handler(config)),
        Route("/config/{subject}", handler(config)),
        Route("/mode", handler(mode)),
    ])


async def _json(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _Answer(413, 41301, f"Body over {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Answer(413, 41301, f"Body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        payload = parse_json(b"".join(chunks))
    except Refused as exc:
        raise _Answer(422, 42201, f"Invalid JSON body: {exc.detail}") from None
    if not isinstance(payload, dict):
        raise _Answer(422, 42201, "Body must be a JSON object")
    return payload
