"""Avro codec in the Confluent wire format.

A framed message is ``0x00`` (magic byte) + 4-byte big-endian schema id + Avro binary body,
so partners can decode with any Confluent-compatible deserializer. Schema ids are stable and
come from ``schemas/manifest.json``; ``.avsc`` files under ``schemas/avro`` are the truth
(see :mod:`schemas.loader` for the layout and versions).

Contract:

* :meth:`Catalogue.entry` returns the *latest* version of a schema; :meth:`Catalogue.encode`
  writes with it, and raises :class:`InvalidMessage` (stage ``encode``) when a record does not
  fit the schema.
* :meth:`Catalogue.decode` accepts the id of *every* registered version and returns the record
  in the shape of the latest version (Avro schema resolution: fields added since are filled
  with their defaults). It raises :class:`InvalidMessage` (stage ``decode``) for anything that
  is not a well-formed framed message of a known schema id.
* Schemas are parsed once, when the catalogue is built; encode/decode are pure.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro
from fastavro.types import Schema

from core.errors import InvalidMessage
from schemas.loader import MANIFEST, SCHEMA_DIR, SchemaVersion, load_versions

MAGIC = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size

__all__ = ["CATALOGUE", "HEADER_SIZE", "MAGIC", "Catalogue", "SchemaEntry", "frame_header"]


def frame_header(schema_id: int) -> bytes:
    """The 5 header bytes of a framed message for ``schema_id``."""
    return _HEADER.pack(MAGIC, schema_id)


@dataclass(frozen=True)
class SchemaEntry:
    """One registered schema version: full name, stable id, self-contained JSON and parsed form."""

    name: str
    schema_id: int
    raw: dict[str, Any]
    parsed: Schema
    version: int = 1
    header: bytes = b""


class Catalogue:
    """The loaded set of schemas, addressable by full name (latest version) or by id (any version)."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, manifest: Path = MANIFEST, *,
                 versions: list[SchemaVersion] | None = None) -> None:
        self._versions = load_versions(schema_dir, manifest) if versions is None else versions
        self._all: dict[str, list[SchemaEntry]] = {}
        for v in self._versions:
            parsed = fastavro.parse_schema(v.raw, named_schemas={})
            entry = SchemaEntry(v.name, v.schema_id, v.raw, parsed, v.version, frame_header(v.schema_id))
            self._all.setdefault(v.name, []).append(entry)
        self._latest: dict[str, SchemaEntry] = {name: entries[-1] for name, entries in self._all.items()}
        # id -> (writer entry, reader schema or None when the writer is the latest version)
        self._by_id: dict[int, tuple[SchemaEntry, Schema | None]] = {}
        for name, entries in self._all.items():
            latest = self._latest[name]
            for e in entries:
                self._by_id[e.schema_id] = (e, None if e is latest else latest.parsed)

    def entry(self, name: str) -> SchemaEntry:
        """The latest version of schema ``name`` (KeyError if unknown)."""
        return self._latest[name]

    def versions(self, name: str) -> list[SchemaEntry]:
        """Every registered version of ``name``, oldest first (KeyError if unknown)."""
        return list(self._all[name])

    def by_id(self, schema_id: int) -> SchemaEntry:
        """The schema version registered under ``schema_id`` (KeyError if unknown)."""
        return self._by_id[schema_id][0]

    def names(self) -> list[str]:
        return sorted(self._latest)

    def all_entries(self) -> list[SchemaEntry]:
        """Every registered version of every schema, ordered by (name, version)."""
        return [e for name in self.names() for e in self._all[name]]

    def with_ids(self, ids: dict[int, int]) -> Catalogue:
        """A copy whose schema ids are remapped (``{manifest id: external registry id}``),
        for deployments whose producers write ids assigned by an external registry."""
        remapped = [dataclasses.replace(v, schema_id=ids.get(v.schema_id, v.schema_id)) for v in self._versions]
        return Catalogue(versions=remapped)

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Encode ``record`` with the latest version of schema ``name`` into a framed message."""
        entry = self._latest[name]
        buf = BytesIO(entry.header)
        buf.seek(HEADER_SIZE)
        try:
            fastavro.schemaless_writer(buf, entry.parsed, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidMessage("encode", "schema_mismatch", f"{name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Decode a framed message into ``(schema name, record in the latest version's shape)``."""
        if len(data) < HEADER_SIZE:
            raise InvalidMessage("decode", "truncated", f"{len(data)} bytes, header needs {HEADER_SIZE}")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise InvalidMessage("decode", "bad_magic", f"magic byte {magic}, expected 0")
        found = self._by_id.get(schema_id)
        if found is None:
            raise InvalidMessage("decode", "unknown_schema", f"schema id {schema_id}")
        entry, reader = found
        buf = BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            record = fastavro.schemaless_reader(buf, entry.parsed, reader)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise InvalidMessage("decode", "corrupt_body", f"{entry.name}: {type(exc).__name__}") from exc
        if buf.tell() != len(data):
            raise InvalidMessage("decode", "trailing_bytes", f"{len(data) - buf.tell()} bytes after record")
        if not isinstance(record, dict):
            raise InvalidMessage("decode", "not_a_record", entry.name)
        return entry.name, record


CATALOGUE = Catalogue()
"""The catalogue shipped with the package, loaded once at import."""
