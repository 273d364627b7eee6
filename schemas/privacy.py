"""Privacy tags of the catalogue: which fields can identify a person, and how.

Every field of every schema carries a ``"techne.privacy"`` attribute (a custom Avro attribute,
ignored by Avro tools) with one of :data:`TAGS`:

* ``direct``: identifies a person on its own (e-mail, phone, name, customer id, visitor id,
  ticket barcode). Never leaves the bus: pseudonymized or dropped.
* ``quasi``: identifies in combination or through a vendor's system (postal code, birth date,
  IP address, user agent, order id). Shared only when an agreement names the field.
* ``free_text``: typed or composed by someone (search terms, URLs, subject lines): may contain
  anything, so it is treated like ``direct``.
* ``pseudonym``: a keyed pseudonym produced by the bus (partner-facing schemas).
* ``none``: describes no person (titles, dates, amounts, ids of performances).

A field whose type is a record carries the most sensitive tag of its own fields (``subject`` is
``direct``). :func:`privacy_tags` is what the pseudonymization stage reads; :func:`tag_problems`
is what the test suite checks, so a new field cannot be added without a tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

TAG_KEY = "techne.privacy"
TAGS = ("none", "pseudonym", "quasi", "free_text", "direct")  # ordered by sensitivity
IDENTIFYING = frozenset({"direct", "quasi", "free_text"})


def _record_of(avro_type: Any, named: dict[str, dict[str, Any]], namespace: str) -> dict[str, Any] | None:
    """The record schema reached through ``avro_type`` (unions, arrays, maps, named references)."""
    if isinstance(avro_type, str):
        return named.get(avro_type) or named.get(f"{namespace}.{avro_type}")
    if isinstance(avro_type, list):
        records = [r for r in (_record_of(t, named, namespace) for t in avro_type) if r is not None]
        return records[0] if records else None
    if isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind in ("record", "error"):
            return avro_type
        if kind == "array":
            return _record_of(avro_type["items"], named, namespace)
        if kind == "map":
            return _record_of(avro_type["values"], named, namespace)
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in ("enum", "fixed")):
            return _record_of(kind, named, namespace)
    return None


def _register(schema: Any, named: dict[str, dict[str, Any]], namespace: str = "") -> None:
    """Collect the record definitions of a self-contained schema by full name."""
    if isinstance(schema, list):
        for s in schema:
            _register(s, named, namespace)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error"):
            ns = schema.get("namespace", namespace)
            name = schema["name"] if "." in schema["name"] else f"{ns}.{schema['name']}".lstrip(".")
            named[name] = schema
            for f in schema["fields"]:
                _register(f["type"], named, ns)
        elif kind == "array":
            _register(schema["items"], named, namespace)
        elif kind == "map":
            _register(schema["values"], named, namespace)
        elif isinstance(kind, (dict, list)):
            _register(kind, named, namespace)


def walk_fields(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """Yield ``(dotted path, field, nested record or None)`` for every field, depth first."""
    named: dict[str, dict[str, Any]] = {}
    _register(schema, named)

    def visit(record: dict[str, Any], prefix: str, seen: frozenset[str]) -> Iterator[
            tuple[str, dict[str, Any], dict[str, Any] | None]]:
        namespace = record.get("namespace", "")
        for field in record["fields"]:
            path = f"{prefix}{field['name']}"
            nested = _record_of(field["type"], named, namespace)
            yield path, field, nested
            if nested is not None and nested["name"] not in seen:
                yield from visit(nested, path + ".", seen | {nested["name"]})

    yield from visit(schema, "", frozenset({schema["name"]}))


def tags_of(schema: dict[str, Any], *, leaves_only: bool = True) -> dict[str, str]:
    """``{dotted field path: tag}`` of a self-contained schema (untagged fields map to "")."""
    return {path: str(field.get(TAG_KEY, "")) for path, field, nested in walk_fields(schema)
            if not (leaves_only and nested is not None)}


def tag_problems(schema: dict[str, Any]) -> list[str]:
    """Every field without a valid tag, and every record field whose tag is not the most
    sensitive of its fields' tags. Empty when the schema is fully and coherently tagged."""
    problems: list[str] = []
    all_tags = tags_of(schema, leaves_only=False)
    for path, field, nested in walk_fields(schema):
        tag = field.get(TAG_KEY)
        if tag not in TAGS:
            problems.append(f"{schema['name']}.{path}: privacy tag {tag!r} is not one of {', '.join(TAGS)}")
            continue
        if nested is not None:
            children = [t for p, t in all_tags.items() if p.startswith(path + ".") and t in TAGS]
            strongest = max(children, key=TAGS.index, default="none")
            if tag != strongest:
                problems.append(f"{schema['name']}.{path}: record field tagged {tag!r}, its fields need {strongest!r}")
    return problems


def privacy_tags(schema_name: str, *, leaves_only: bool = True) -> dict[str, str]:
    """``{dotted field path: tag}`` for the latest version of ``schema_name`` in the shipped
    catalogue, e.g. ``{"subject.email": "direct", "subject.postal_code": "quasi", ...}``."""
    from schemas.codec import CATALOGUE

    return tags_of(CATALOGUE.entry(schema_name).raw, leaves_only=leaves_only)
