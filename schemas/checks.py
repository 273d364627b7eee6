"""The catalogue's rules, as functions returning human-readable problems (empty = all good).

Run by the test suite and by ``techne schemas check``:

* every version is BACKWARD compatible with the previous one (:mod:`schemas.compat`);
* every field of every version carries a valid privacy tag (:mod:`schemas.privacy`);
* a published version is never edited: its Parsing Canonical Form fingerprint matches the
  manifest (docs and tags may change, the wire format may not);
* every event type belongs to exactly one schema; every field has English and French docs.
"""

from __future__ import annotations

from pathlib import Path

from schemas.compat import check_catalogue
from schemas.loader import MANIFEST, SCHEMA_DIR, SchemaVersion, load_versions
from schemas.privacy import tag_problems, walk_fields


def fingerprint_problems(versions: list[SchemaVersion]) -> list[str]:
    return [f"{v.name} v{v.version} ({v.file}): fingerprint {v.canonical_fingerprint()} differs from the "
            f"manifest's {v.fingerprint or '(none)'}: published versions must not change; add a version instead "
            "(or, for a new unpublished version, record this fingerprint)"
            for v in versions if v.canonical_fingerprint() != v.fingerprint]


def privacy_problems(versions: list[SchemaVersion]) -> list[str]:
    return [f"v{v.version} {p}" for v in versions for p in tag_problems(v.raw)]


def event_type_problems(versions: list[SchemaVersion]) -> list[str]:
    owner: dict[str, str] = {}
    problems = []
    latest = {v.name: v for v in versions}
    for v in latest.values():
        for event_type in v.raw.get("techne.event_types", []):
            if event_type in owner:
                problems.append(f"event type {event_type} is in both {owner[event_type]} and {v.name}")
            owner[event_type] = v.name
    return problems


def doc_problems(versions: list[SchemaVersion]) -> list[str]:
    latest = {v.name: v for v in versions}
    return [f"{name}.{path}: missing {key}" for name, v in latest.items() for path, field, _ in walk_fields(v.raw)
            for key in ("doc", "techne.doc_fr") if not field.get(key)]


def all_problems(schema_dir: Path = SCHEMA_DIR, manifest: Path = MANIFEST) -> list[str]:
    versions = load_versions(schema_dir, manifest)
    return [*check_catalogue(schema_dir, manifest), *privacy_problems(versions), *fingerprint_problems(versions),
            *event_type_problems(versions), *doc_problems(versions)]
