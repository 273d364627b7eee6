"""Framed Avro records -> rows the engine decodes itself (pure, the sink's fast path).

Decoding every field of every record in Python (fastavro, then a JSON row) costs several
times what the engine needs to insert it. Instead the sink reads only the leading fields it
needs for every record (:class:`SharedRow`: identity and event time), reads venue, agreement,
purpose and pseudonym (:meth:`SharedFormat.details`) only for the few rows a retention or
erasure check needs them for, and hands the untouched Avro body to ClickHouse, which decodes it natively
(``FORMAT Avro``): :meth:`SharedFormat.container` wraps bodies in an Avro object container
file with the writer schema in its header, **one record per block**, so a malformed record
cannot shift how the following ones are read (each block is bounded by its byte size and its
sync marker).

Contract of :meth:`SharedFormat.parse` (raises :class:`InvalidMessage`, stage ``decode``):
the value is a Confluent-framed record written with one of the registered versions of the
shared schema; its first four fields are readable; ``event_id`` is a UUID in canonical text form
(``8-4-4-4-12`` hex digits, stored lower-case); ``occurred_at`` and ``received_at`` are within
the ``DateTime64`` range. The rest of the body is validated by the engine at insert time;
:mod:`sinks.orders` falls back to a full Python decode of the batch to single out a record the
engine refuses. The engine is the judge: it refuses a record whose stored fields cannot be
read, but it does not look inside fields the table does not store (a record cut short there,
or followed by stray bytes, is stored with its stored values intact), where the Python decoder
would refuse the whole record.

Every registered version must start with the fields read here as plain (non-union) strings
and longs/ints; a version that does not is refused when the format is built.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Sequence
from io import BytesIO
from typing import Any, NamedTuple

import fastavro

from schemas.codec import CATALOGUE, Catalogue
from schemas.models import SHARED_TICKET_ORDER
from techne.errors import InvalidMessage

_HEADER = struct.Struct(">bI")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# DateTime64(6) holds 1900-01-01 .. 2299-12-31 23:59:59.999999 (microseconds since the epoch).
TS_MIN_US = -2_208_988_800_000_000
TS_MAX_US = 10_413_791_999_999_999
HOT = {"event_id": "string", "occurred_at": "long", "received_at": "long"}
NEEDED = {**HOT, "venue_id": "string", "agreement_id": "string", "purpose": "string", "subject_pseudonym": "string"}
_PLAIN = frozenset({"string", "bytes", "long", "int", "boolean", "float", "double"})
_SYNC = os.urandom(16)
_ZIGZAG: list[bytes] = []  # zig-zag varints of small lengths, filled below


class SharedRow(NamedTuple):
    """What the sink knows about every shared record before the engine decodes it."""

    event_id: str
    occurred_at_us: int
    schema_id: int
    value: bytes
    received_at_us: int = 0  # when the gateway received the source event (end-to-end latency)


class Details(NamedTuple):
    """The next leading fields of a shared record, read on demand."""

    venue_id: str
    agreement_id: str
    purpose: str
    subject_pseudonym: str


def _prefix_schema(schema: dict[str, Any], needed: dict[str, str]) -> Any:
    """A schema of the fields up to the last ``needed`` one, with logical types dropped (plain
    strings and longs): reading a record with it decodes only that prefix, in C."""
    names = [f["name"] for f in schema["fields"]]
    missing = set(NEEDED) - set(names)
    if missing:
        raise ValueError(f"{schema.get('name')}: missing leading fields {sorted(missing)}")
    fields = []
    for field in schema["fields"][: max(names.index(n) for n in needed) + 1]:
        avro = field["type"]
        base = avro.get("type") if isinstance(avro, dict) else avro
        if not isinstance(base, str) or base not in _PLAIN or NEEDED.get(field["name"], base) != base:
            raise ValueError(f"field {field['name']!r} ({avro!r}) cannot lead a shared record")
        fields.append({"name": field["name"], "type": base})
    return fastavro.parse_schema({"type": "record", "name": "Prefix", "fields": fields}, named_schemas={})


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_ZIGZAG.extend(_zigzag(n) for n in range(8192))


def _container_header(schema: dict[str, Any]) -> bytes:
    meta = {b"avro.schema": json.dumps(schema).encode(), b"avro.codec": b"null"}
    out = bytearray(b"Obj\x01")
    out += _zigzag(len(meta))
    for key, val in meta.items():
        out += _zigzag(len(key)) + key + _zigzag(len(val)) + val
    out += _zigzag(0) + _SYNC
    return bytes(out)


class SharedFormat:
    """The registered writer schemas of one shared record type, addressed by schema id."""

    def __init__(self, catalogue: Catalogue = CATALOGUE, name: str = SHARED_TICKET_ORDER) -> None:
        self.name, self.catalogue = name, catalogue
        self._prefixes: dict[int, Any] = {}
        self._details: dict[int, Any] = {}
        self._headers: dict[int, bytes] = {}
        self._fields: dict[int, frozenset[str]] = {}
        for entry in catalogue.versions(name):
            self._prefixes[entry.schema_id] = _prefix_schema(entry.raw, HOT)
            self._details[entry.schema_id] = _prefix_schema(entry.raw, NEEDED)
            self._headers[entry.schema_id] = _container_header(entry.raw)
            self._fields[entry.schema_id] = frozenset(f["name"] for f in entry.raw["fields"])

    def fields(self, schema_id: int) -> frozenset[str]:
        """Field names of the writer schema ``schema_id``."""
        return self._fields[schema_id]

    def parse(self, value: bytes | None) -> SharedRow:
        """Read the leading fields of a framed record (see the module contract)."""
        if value is None:
            raise InvalidMessage("decode", "tombstone", "message has no value")
        if len(value) < _HEADER.size:
            raise InvalidMessage("decode", "truncated", f"{len(value)} bytes, header needs 5")
        magic, schema_id = _HEADER.unpack_from(value)
        if magic != 0:
            raise InvalidMessage("decode", "bad_magic", f"magic byte {magic}, expected 0")
        prefix = self._prefixes.get(schema_id)
        if prefix is None:
            raise InvalidMessage("decode", "unexpected_schema", f"schema id {schema_id} is not {self.name}")
        buf = BytesIO(value)
        buf.seek(_HEADER.size)
        try:
            got = fastavro.schemaless_reader(buf, prefix, None)
        except Exception:  # fastavro raises many types on corrupt input
            raise InvalidMessage("decode", "corrupt_body", f"{self.name}: unreadable leading fields") from None
        event_id = got["event_id"]
        if len(event_id) != 36 or not _UUID_RE.fullmatch(event_id):
            raise InvalidMessage("decode", "bad_uuid", "event_id")
        occurred, received = got["occurred_at"], got["received_at"]
        if not TS_MIN_US <= occurred <= TS_MAX_US or not TS_MIN_US <= received <= TS_MAX_US:
            raise InvalidMessage("row", "timestamp_out_of_range", "occurred_at/received_at")
        return SharedRow(event_id.lower(), occurred, schema_id, value, received)

    def details(self, row: SharedRow) -> Details | None:
        """Venue, agreement, purpose and pseudonym of ``row``; ``None`` if they cannot be read
        (the engine will then refuse the record, see the module contract)."""
        buf = BytesIO(row.value)
        buf.seek(_HEADER.size)
        try:
            got = fastavro.schemaless_reader(buf, self._details[row.schema_id], None)
        except Exception:  # fastavro raises many types on corrupt input
            return None
        return Details(got["venue_id"], got["agreement_id"], got["purpose"], got["subject_pseudonym"])

    def container(self, schema_id: int, rows: Sequence[SharedRow]) -> bytes:
        """An Avro object container of ``rows`` (all written with ``schema_id``), one per block."""
        one, sync, zigzag, skip = b"\x02", _SYNC, _ZIGZAG, _HEADER.size
        blocks = [
            one + (zigzag[n] if (n := len(r.value) - skip) < 8192 else _zigzag(n)) + r.value[skip:] + sync
            for r in rows
        ]
        return self._headers[schema_id] + b"".join(blocks)
