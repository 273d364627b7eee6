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

:meth:`SharedFormat.parse_many` is :meth:`~SharedFormat.parse` of a whole poll at once: the
same rows, or the same first error. It reads the leading fields of every record in a few
vectorized passes (numpy) when the writer schemas start with the usual
``event_id, event_type, occurred_at, received_at``, and defers to ``parse`` record by record as
soon as anything is unusual (a tombstone, another layout, a long ``event_type``, a value out of
range, ...): the bulk pass only accepts what it can prove ``parse`` would accept identically.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Sequence
from io import BytesIO
from itertools import repeat
from typing import Any, NamedTuple

import fastavro
import numpy as np
import numpy.typing as npt

from core.errors import InvalidMessage
from schemas.codec import CATALOGUE, Catalogue
from schemas.models import SHARED_TICKET_ORDER

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
# parse_many: the usual leading fields, and byte tables of the vectorized passes
_USUAL = (("event_id", "string"), ("event_type", "string"), ("occurred_at", "long"), ("received_at", "long"))
_ID_LEN = 36
_ID_AT = _HEADER.size + 1  # event_id's bytes follow its one-byte length (72: zig-zag of 36)
_TYPE_AT = _ID_AT + _ID_LEN  # event_type's one-byte length
_MIN_USUAL = _TYPE_AT + 3  # with an empty event_type and two one-byte longs
_BULK_MIN = 8
_PAD = bytes(128)  # after the joined records, so that every window read stays inside the buffer
_ID_COLS = np.arange(_ID_LEN)
_DASHES = np.array([8, 13, 18, 23])
_HEX_COLS = np.setdiff1d(_ID_COLS, _DASHES)
_IS_HEX = np.zeros(256, dtype=bool)
_IS_HEX[list(b"0123456789abcdefABCDEF")] = True
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[list(b"ABCDEF")] = list(b"abcdef")
_VARINT_COLS = np.arange(8)  # timestamps within the DateTime64 range take at most 8 varint bytes
_VARINT_SHIFTS = (7 * _VARINT_COLS).astype(np.uint64)


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
_BLOCK_STARTS = [b"\x02" + z for z in _ZIGZAG]  # a block of one record of n bytes starts with count 1, size n


def _container_header(schema: dict[str, Any]) -> bytes:
    meta = {b"avro.schema": json.dumps(schema).encode(), b"avro.codec": b"null"}
    out = bytearray(b"Obj\x01")
    out += _zigzag(len(meta))
    for key, val in meta.items():
        out += _zigzag(len(key)) + key + _zigzag(len(val)) + val
    out += _zigzag(0) + _SYNC
    return bytes(out)


def _windows(buf: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.uint8]:
    """``width`` bytes of ``buf`` from each position of ``at`` (one row each)."""
    return np.lib.stride_tricks.sliding_window_view(buf, width)[at]


def _longs(
    buf: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Zig-zag varint longs starting at positions ``at`` (each ending before ``ends``) and the
    positions after them; ``None`` if one is longer than 8 bytes or runs past its record."""
    if (at >= ends).any():
        return None
    raw = _windows(buf, at, len(_VARINT_COLS))
    last = raw < 0x80
    if not last.any(axis=1).all():
        return None
    size = last.argmax(axis=1) + 1
    after = at + size
    if (after > ends).any():
        return None
    keep = size[:, None] > _VARINT_COLS
    zigzag = np.where(keep, (raw & 0x7F).astype(np.uint64) << _VARINT_SHIFTS, np.uint64(0)).sum(axis=1, dtype=np.uint64)
    value = (zigzag >> np.uint64(1)).astype(np.int64) ^ -(zigzag & np.uint64(1)).astype(np.int64)
    return value, after


class SharedFormat:
    """The registered writer schemas of one shared record type, addressed by schema id."""

    def __init__(self, catalogue: Catalogue = CATALOGUE, name: str = SHARED_TICKET_ORDER) -> None:
        self.name, self.catalogue = name, catalogue
        self._prefixes: dict[int, Any] = {}
        self._details: dict[int, Any] = {}
        self._headers: dict[int, bytes] = {}
        self._fields: dict[int, frozenset[str]] = {}
        self._usual: set[int] = set()  # schema ids whose leading fields parse_many reads in bulk
        for entry in catalogue.versions(name):
            self._prefixes[entry.schema_id] = _prefix_schema(entry.raw, HOT)
            self._details[entry.schema_id] = _prefix_schema(entry.raw, NEEDED)
            self._headers[entry.schema_id] = _container_header(entry.raw)
            self._fields[entry.schema_id] = frozenset(f["name"] for f in entry.raw["fields"])
            if tuple((f["name"], f["type"]) for f in self._prefixes[entry.schema_id]["fields"]) == _USUAL:
                self._usual.add(entry.schema_id)

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

    def parse_many(self, values: Sequence[bytes | None]) -> list[SharedRow]:
        """``[parse(v) for v in values]``, in bulk when possible (see the module doc)."""
        rows = self._bulk(values) if len(values) >= _BULK_MIN else None
        return [self.parse(v) for v in values] if rows is None else rows

    def _bulk(self, values: Sequence[bytes | None]) -> list[SharedRow] | None:
        """The rows of ``values`` if every one is a valid record of the usual layout, else ``None``."""
        n = len(values)
        try:
            lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)  # type: ignore[arg-type]
        except TypeError:  # a tombstone
            return None
        if lengths.min() < _MIN_USUAL:
            return None
        buf = np.frombuffer(b"".join([*values, _PAD]), dtype=np.uint8)  # type: ignore[list-item]
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        ends = starts + lengths
        head = _windows(buf, starts, _TYPE_AT + 1)  # magic, schema id, event_id, event_type's length
        if head[:, 0].any() or (head[:, _HEADER.size] != 2 * _ID_LEN).any():
            return None  # a magic byte is not 0, or an event_id is not 36 characters long
        sid = head[:, 1 : _HEADER.size].astype(np.int64)
        schema_ids = (sid[:, 0] << 24) | (sid[:, 1] << 16) | (sid[:, 2] << 8) | sid[:, 3]
        if not set(np.unique(schema_ids).tolist()) <= self._usual:
            return None
        ids = head[:, _ID_AT:_TYPE_AT]
        if not ((ids[:, _DASHES] == ord("-")).all() and _IS_HEX[ids[:, _HEX_COLS]].all()):
            return None  # not a canonical UUID: parse says which one
        length_byte = head[:, _TYPE_AT]
        if (length_byte & 0x81).any():
            return None  # an event_type of 64+ bytes (a longer length varint), or a negative length
        type_len = (length_byte >> 1).astype(np.int64)
        window = np.arange(int(type_len.max()))
        if ((_windows(buf, starts + _TYPE_AT + 1, len(window)) >= 0x80) & (window < type_len[:, None])).any():
            return None  # event_type must be valid UTF-8: in bulk, only ASCII is
        occurred = _longs(buf, starts + _TYPE_AT + 1 + type_len, ends)
        if occurred is None:
            return None
        occurred_us, received_at = occurred
        received = _longs(buf, received_at, ends)
        if received is None:
            return None
        received_us = received[0]
        if ((occurred_us < TS_MIN_US) | (occurred_us > TS_MAX_US) | (received_us < TS_MIN_US)
                | (received_us > TS_MAX_US)).any():
            return None
        text = _LOWER[ids].tobytes().decode("ascii")
        event_ids = [text[i : i + _ID_LEN] for i in range(0, n * _ID_LEN, _ID_LEN)]
        fields = zip(event_ids, occurred_us.tolist(), schema_ids.tolist(), values, received_us.tolist(), strict=True)
        return list(map(tuple.__new__, repeat(SharedRow), fields))  # SharedRow(*f), without a Python frame each

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
        starts, sync, skip = _BLOCK_STARTS, _SYNC, _HEADER.size
        parts = [self._headers[schema_id]]
        add = parts.append
        for r in rows:  # one join of small parts: each body is copied twice (slice, join), not four times
            value = r.value
            n = len(value) - skip
            add(starts[n] if n < 8192 else b"\x02" + _zigzag(n))
            add(value[skip:])
            add(sync)
        return b"".join(parts)
