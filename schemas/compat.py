"""Schema evolution rules: every version must be BACKWARD compatible with the previous one.

BACKWARD (Confluent's default): a consumer using the new version can read data written with
the previous one. The check is the Apache ``avro`` package's
:class:`~avro.compatibility.ReaderWriterCompatibilityChecker` (new version as reader, previous
as writer); this module only turns its JSON-pointer locations into field paths, so that a
failure names the field (``... TicketOrderPlaced v3 is not BACKWARD compatible with v2: field
quantity: type_mismatch (reader type: string not compatible with writer type: int)``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from schemas.loader import MANIFEST, SCHEMA_DIR, load_type_versions, load_versions


def _field_path(schema: Any, pointer: str) -> str:
    """Translate an avro-checker location (``/fields/7/type/fields/2``) into ``subject.phone``."""
    names: list[str] = []
    node = schema
    parts = [p for p in pointer.split("/") if p]
    for i, part in enumerate(parts):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            break
        if parts[i - 1:i] == ["fields"] and isinstance(node, dict) and "name" in node:
            names.append(str(node["name"]))
    return ".".join(names) or "(schema)"


def backward_problems(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty if it can): one
    line naming the reader's offending field paths, the kinds of incompatibility and the
    checker's messages (the checker reports them as sets, not per field)."""
    import avro.schema
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

    result = ReaderWriterCompatibilityChecker().get_compatibility(  # type: ignore[no-untyped-call]
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer)))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    paths = sorted({_field_path(reader, loc) for loc in result.locations if loc != "/"}) or ["(schema)"]
    kinds = sorted({i.value for i in result.incompatibilities})
    reasons = "; ".join(sorted(result.messages))
    return [f"field {', '.join(paths)}: {', '.join(kinds)} ({reasons})"]


def check_catalogue(schema_dir: Path = SCHEMA_DIR, manifest: Path = MANIFEST) -> list[str]:
    """Every BACKWARD incompatibility between consecutive versions of the catalogue's schemas
    and shared types, each message naming the schema, versions and field."""
    problems: list[str] = []
    by_name: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for v in load_versions(schema_dir, manifest):
        by_name.setdefault(v.name, []).append((v.version, v.raw))
    for type_name, raws in load_type_versions(schema_dir, manifest).items():
        by_name[f"{type_name} (shared type)"] = list(enumerate(raws, start=1))
    for name, versions in sorted(by_name.items()):
        for (old_v, old), (new_v, new) in itertools.pairwise(versions):
            problems += [f"{name} v{new_v} is not BACKWARD compatible with v{old_v}: {p}"
                         for p in backward_problems(new, old)]
    return problems
