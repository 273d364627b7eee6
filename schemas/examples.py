"""Example events built from the catalogue's own ``techne.example`` attributes.

:func:`example_record` returns an Avro record (Python values: ``datetime``, ``date``) of a
schema; :func:`venue_json` the JSON body a venue would post for it; :func:`to_json` renders a
record as JSON. The catalogue docs, the codec benchmark and the tests all use these, so every
example in the docs is known to encode, decode and validate. Pure functions.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from schemas.privacy import walk_fields

BUS_OWNED = ("received_at", "venue_id", "schema_version")
# Which subject fields a realistic example carries, by the schema's ``techne.customer`` policy.
SUBJECT_EXAMPLE = {
    "identified": {"email", "customer_id", "postal_code", "first_name", "last_name", "phone"},
    "visitor": {"visitor_id", "ip_address", "user_agent"},
    "optional": set(),
}


def _logical(avro_type: Any) -> str | None:
    if isinstance(avro_type, dict):
        return avro_type.get("logicalType")
    if isinstance(avro_type, list):
        return next((lt for lt in (_logical(t) for t in avro_type) if lt), None)
    return None


def _convert(value: Any, avro_type: Any) -> Any:
    if value is None:
        return None
    logical = _logical(avro_type)
    if logical in ("timestamp-micros", "timestamp-millis"):
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if logical == "date":
        return dt.date.fromisoformat(str(value))
    return value


def _fallback(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        return None if "null" in avro_type else _fallback(avro_type[0])
    if isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind == "enum":
            return avro_type["symbols"][0]
        if kind == "array":
            return []
        if kind == "map":
            return {}
        return _fallback(kind)
    return {"string": "x", "int": 1, "long": 1, "boolean": False, "float": 1.0, "double": 1.0,
            "bytes": b"", "null": None}.get(str(avro_type))


def example_record(schema: dict[str, Any]) -> dict[str, Any]:
    """A complete record of the self-contained ``schema`` from its fields' examples (the subject
    carries the identifiers such an event usually has, see :data:`SUBJECT_EXAMPLE`)."""
    out: dict[str, Any] = {}
    nested_of: dict[str, dict[str, Any]] = {}
    subject_fields = SUBJECT_EXAMPLE[schema.get("techne.customer", "identified")]
    for path, field, nested in walk_fields(schema):
        parent, _, name = path.rpartition(".")
        target = nested_of[parent] if parent else out
        if nested is not None:
            target[name] = nested_of[path] = {}
        elif parent == "subject" and name not in subject_fields:
            target[name] = field.get("default")
        elif "techne.example" in field:
            target[name] = _convert(field["techne.example"], field["type"])
        elif "default" in field:
            target[name] = field["default"]
        else:
            target[name] = _fallback(field["type"])
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return str(value) if not isinstance(value, (str, int, float, bool, type(None))) else value


def to_json(record: dict[str, Any], indent: int | None = 2) -> str:
    """JSON text of a record (times in ISO 8601 UTC, dates ISO)."""
    return json.dumps(_jsonable(record), ensure_ascii=False, indent=indent)


def venue_json(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON body a venue posts for an event of ``schema`` (nulls and bus-owned fields left out)."""
    record = _jsonable(example_record(schema))
    body: dict[str, Any] = {"type": record.pop("event_type")}
    for key in BUS_OWNED:
        record.pop(key, None)
    subject = record.pop("subject", None)
    if subject is not None:
        record["customer"] = {k: v for k, v in subject.items() if v is not None}
    body.update({k: v for k, v in record.items() if v is not None})
    return body
