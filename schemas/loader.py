"""Reading the catalogue from disk: the manifest, the ``.avsc`` files and their references.

Layout: ``schemas/avro/<event>/v<N>.avsc`` holds version N of one schema; shared named types
(e.g. ``org.techne.common.Subject``) are versioned the same way and listed under ``types`` in
``schemas/manifest.json``. Each schema version in the manifest names its stable id, its file,
the version of every shared type it references (``references``) and a ``fingerprint``.

Contract: :func:`load_versions` returns every registered version *self-contained* (shared types
inlined at their first use, as a Confluent registry would serve it), ordered by name then
version, or raises :class:`ManifestError` naming the file and problem. Pure: reads files only.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro.schema import to_parsing_canonical_form

from core.errors import ManifestError as ManifestError  # defined with the whole tree

SCHEMA_DIR = Path(__file__).parent / "avro"
MANIFEST = Path(__file__).parent / "manifest.json"



@dataclass(frozen=True)
class SchemaVersion:
    """One registered version of one schema, as read from disk."""

    name: str
    version: int
    schema_id: int
    file: str
    raw: dict[str, Any]  # self-contained: shared named types inlined
    references: dict[str, int]
    fingerprint: str  # as recorded in the manifest

    def canonical_fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the Parsing Canonical Form of :attr:`raw`."""
        return fingerprint(self.raw)


def fingerprint(schema: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of a self-contained schema's Parsing Canonical Form."""
    return hashlib.sha256(to_parsing_canonical_form(schema).encode()).hexdigest()[:16]


def inline(schema: Any, types: dict[str, Any], defined: set[str] | None = None) -> Any:
    """Return ``schema`` with every reference to a name in ``types`` replaced by its definition
    at its first use (later uses stay references, as Avro requires)."""
    defined = set() if defined is None else defined
    if isinstance(schema, str):
        if schema in types and schema not in defined:
            defined.add(schema)
            return inline(copy.deepcopy(types[schema]), types, defined)
        return schema
    if isinstance(schema, list):
        return [inline(s, types, defined) for s in schema]
    if isinstance(schema, dict):
        out = dict(schema)
        if schema.get("type") in ("record", "error"):
            out["fields"] = [{**f, "type": inline(f["type"], types, defined)} for f in schema["fields"]]
        elif schema.get("type") == "array":
            out["items"] = inline(schema["items"], types, defined)
        elif schema.get("type") == "map":
            out["values"] = inline(schema["values"], types, defined)
        elif isinstance(schema.get("type"), str) and schema["type"] in types:
            out["type"] = inline(schema["type"], types, defined)
        return out
    return schema


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc


def read_manifest(manifest: Path = MANIFEST) -> dict[str, Any]:
    data = _read(manifest)
    if not isinstance(data, dict) or not isinstance(data.get("schemas"), dict):
        raise ManifestError(f"{manifest}: expected an object with 'schemas'")
    return data


def load_versions(schema_dir: Path = SCHEMA_DIR, manifest: Path = MANIFEST) -> list[SchemaVersion]:
    """Every registered schema version, self-contained, ordered by (name, version)."""
    data = read_manifest(manifest)
    type_files: dict[str, dict[str, str]] = data.get("types", {})
    out: list[SchemaVersion] = []
    seen_ids: dict[int, str] = {}
    for name, versions in sorted(data["schemas"].items()):
        previous = 0
        for spec in versions:
            version, schema_id = int(spec["version"]), int(spec["id"])
            if version <= previous:
                raise ManifestError(f"{manifest}: {name} versions must increase (v{version} after v{previous})")
            if schema_id in seen_ids:
                raise ManifestError(f"{manifest}: duplicate schema id {schema_id} ({seen_ids[schema_id]}, {name})")
            seen_ids[schema_id] = f"{name} v{version}"
            previous = version
            refs = {str(k): int(v) for k, v in spec.get("references", {}).items()}
            types: dict[str, Any] = {}
            for ref, ref_version in refs.items():
                try:
                    types[ref] = _read(schema_dir / type_files[ref][str(ref_version)])
                except KeyError as exc:
                    raise ManifestError(
                        f"{manifest}: {name} v{version} references unknown {ref} v{ref_version}") from exc
            raw = _read(schema_dir / spec["file"])
            full = f"{raw.get('namespace', '')}.{raw.get('name')}".lstrip(".")
            if full != name:
                raise ManifestError(f"{spec['file']}: declares {full}, manifest says {name}")
            out.append(SchemaVersion(name, version, schema_id, spec["file"], inline(raw, types), refs,
                                     str(spec.get("fingerprint", ""))))
    return out


def load_type_versions(schema_dir: Path = SCHEMA_DIR, manifest: Path = MANIFEST) -> dict[str, list[dict[str, Any]]]:
    """Every version of every shared named type, oldest first (for compatibility checks)."""
    data = read_manifest(manifest)
    return {name: [_read(schema_dir / f) for _, f in sorted(files.items(), key=lambda kv: int(kv[0]))]
            for name, files in data.get("types", {}).items()}
