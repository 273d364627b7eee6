"""Avro codec in the Confluent wire format.

A framed message is ``0x00`` (magic byte) + 4-byte big-endian schema id + Avro binary body,
so partners can decode with any Confluent-compatible deserializer. Schema ids are stable and
come from ``schemas/manifest.json``; ``.avsc`` files under ``schemas/avro`` are the truth.

Contract: :meth:`Catalogue.encode` raises :class:`InvalidMessage` (stage ``encode``) when a
record does not fit its schema; :meth:`Catalogue.decode` raises :class:`InvalidMessage`
(stage ``decode``) for anything that is not a well-formed framed message of a known schema.
Both are pure (no I/O after the catalogue is loaded).
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.types import Schema

from techne.errors import InvalidMessage

MAGIC = 0
_HEADER = struct.Struct(">bI")
SCHEMA_DIR = Path(__file__).parent / "avro"
MANIFEST = Path(__file__).parent / "manifest.json"
# Shared named types, parsed first so that event schemas can reference them by name.
_SHARED = ("subject.avsc",)


@dataclass(frozen=True)
class SchemaEntry:
    """One registered schema: its full name, stable id, raw JSON text and parsed form."""

    name: str
    schema_id: int
    raw: dict[str, Any]
    parsed: Schema


class Catalogue:
    """The loaded set of schemas, addressable by full name or by id."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, manifest: Path = MANIFEST) -> None:
        named: dict[str, Any] = {}
        for shared in _SHARED:
            fastavro.parse_schema(json.loads((schema_dir / shared).read_text()), named_schemas=named)
        entries = json.loads(manifest.read_text())
        self._by_name: dict[str, SchemaEntry] = {}
        self._by_id: dict[int, SchemaEntry] = {}
        for name, spec in entries.items():
            if name.startswith("_"):
                continue
            raw = json.loads((schema_dir / spec["file"]).read_text())
            parsed = fastavro.parse_schema(raw, named_schemas=named)
            entry = SchemaEntry(name=name, schema_id=int(spec["id"]), raw=raw, parsed=parsed)
            if entry.schema_id in self._by_id:
                raise ValueError(f"duplicate schema id {entry.schema_id} in {manifest}")
            self._by_name[name] = entry
            self._by_id[entry.schema_id] = entry

    def entry(self, name: str) -> SchemaEntry:
        """Return the schema registered under ``name`` (KeyError if unknown)."""
        return self._by_name[name]

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Encode ``record`` with schema ``name`` into a framed message."""
        entry = self._by_name[name]
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, entry.schema_id))
        try:
            fastavro.schemaless_writer(buf, entry.parsed, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidMessage("encode", "schema_mismatch", f"{name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Decode a framed message into ``(schema name, record)``."""
        if len(data) < _HEADER.size:
            raise InvalidMessage("decode", "truncated", f"{len(data)} bytes, header needs 5")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise InvalidMessage("decode", "bad_magic", f"magic byte {magic}, expected 0")
        entry = self._by_id.get(schema_id)
        if entry is None:
            raise InvalidMessage("decode", "unknown_schema", f"schema id {schema_id}")
        buf = io.BytesIO(data)
        buf.seek(_HEADER.size)
        try:
            record = fastavro.schemaless_reader(buf, entry.parsed, None)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise InvalidMessage("decode", "corrupt_body", f"{entry.name}: {type(exc).__name__}") from exc
        if buf.tell() != len(data):
            raise InvalidMessage("decode", "trailing_bytes", f"{len(data) - buf.tell()} bytes after record")
        if not isinstance(record, dict):
            raise InvalidMessage("decode", "not_a_record", entry.name)
        return entry.name, record


CATALOGUE = Catalogue()
"""The catalogue shipped with the package, loaded once at import."""
