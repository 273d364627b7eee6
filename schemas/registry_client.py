"""A small client of a Confluent-compatible schema registry, for deployments that run one.

By default the bus writes the stable ids of ``schemas/manifest.json`` and partners resolve them
through our own read-only API (``techne registry``). When ``TECHNE_SCHEMA_REGISTRY_URL`` points
at an external registry instead, :func:`catalogue_for` registers every version of every schema
there, oldest first, under its RecordNameStrategy subject (the record's full name; the
registry checks each version against the previous one, as our tests do), and returns a copy of
the catalogue whose ids are the registry's: producers then write, and consumers accept, the ids
that registry assigned, and partners resolve them from it with any standard client. Registering
is idempotent (the same schema gets the same id back), so every process can do it at start-up.

Errors are :class:`RegistryError` carrying the HTTP status and Confluent error code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from core.errors import RegistryError as RegistryError  # defined with the whole tree
from schemas.codec import CATALOGUE, Catalogue, SchemaEntry
from schemas.registry_api import MEDIA_TYPE, schema_text


def record_name_subject(entry: SchemaEntry) -> str:
    """RecordNameStrategy: the subject is the record's full name."""
    return entry.name


class RegistryClient:
    """Register / look up schemas and fetch them by id (synchronous httpx)."""

    def __init__(self, url: str = "", *, client: httpx.Client | None = None, timeout: float = 5.0) -> None:
        self._http = client or httpx.Client(base_url=url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body, headers={"Accept": MEDIA_TYPE,
                                                                           "Content-Type": MEDIA_TYPE})
        except httpx.HTTPError as exc:
            raise RegistryError(f"{method} {path}: {exc}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400:
            raise RegistryError(f"{method} {path}: {payload.get('message', response.text)}",
                                response.status_code, int(payload.get("error_code", 0) or 0))
        return payload

    def register(self, subject: str, schema: str | dict[str, Any]) -> int:
        """Register ``schema`` under ``subject`` (idempotent); return its id."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return int(self._call("POST", f"/subjects/{subject}/versions", {"schema": text})["id"])

    def lookup(self, subject: str, schema: str | dict[str, Any]) -> tuple[int, int]:
        """``(id, version)`` of ``schema`` already registered under ``subject``."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        found = self._call("POST", f"/subjects/{subject}", {"schema": text})
        return int(found["id"]), int(found["version"])

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema registered under ``schema_id``."""
        return dict(json.loads(self._call("GET", f"/schemas/ids/{schema_id}")["schema"]))

    def subjects(self) -> list[str]:
        return [str(s) for s in self._call("GET", "/subjects")]


def resolve_ids(client: RegistryClient, catalogue: Catalogue = CATALOGUE, *, register: bool = True,
                subject_of: Callable[[SchemaEntry], str] = record_name_subject) -> dict[int, int]:
    """``{manifest id: registry id}`` for every version of every schema, registering them
    oldest first (``register=False``: only look them up, failing on any missing one)."""
    ids: dict[int, int] = {}
    for entry in catalogue.all_entries():
        subject = subject_of(entry)
        if register:
            ids[entry.schema_id] = client.register(subject, schema_text(entry))
        else:
            ids[entry.schema_id] = client.lookup(subject, schema_text(entry))[0]
    return ids


def catalogue_for(registry_url: str | None, catalogue: Catalogue = CATALOGUE) -> Catalogue:
    """The catalogue a producer or consumer should use: ours with manifest ids when no external
    registry is configured, else a copy carrying the external registry's ids."""
    if not registry_url:
        return catalogue
    client = RegistryClient(registry_url)
    try:
        return catalogue.with_ids(resolve_ids(client, catalogue))
    finally:
        client.close()
