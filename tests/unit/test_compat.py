"""Evolution rules: each schema version is BACKWARD compatible with the previous one (Apache avro checker)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from schemas.checks import all_problems
from schemas.compat import backward_problems, check_catalogue
from schemas.loader import SCHEMA_DIR, fingerprint, load_versions
from schemas.models import TICKET_ORDER


def test_the_catalogue_is_backward_compatible_version_to_version() -> None:
    assert check_catalogue() == []


def _copy(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    shutil.copytree(SCHEMA_DIR, tmp_path / "avro")
    manifest = json.loads((SCHEMA_DIR.parent / "manifest.json").read_text())
    return tmp_path / "avro", tmp_path / "manifest.json", manifest


def test_an_incompatible_new_version_fails_naming_the_field(tmp_path: Path) -> None:
    schema_dir, manifest_path, manifest = _copy(tmp_path)
    v2 = json.loads((schema_dir / "ticket_order_placed" / "v2.avsc").read_text())
    for field in v2["fields"]:
        if field["name"] == "quantity":
            field["type"] = "string"  # int -> string: old data unreadable
    v2["fields"].append({"name": "seat_zone", "type": "string", "techne.privacy": "none",
                         "doc": "Zone.", "techne.doc_fr": "Zone."})  # no default
    (schema_dir / "ticket_order_placed" / "v3.avsc").write_text(json.dumps(v2))
    manifest["schemas"][TICKET_ORDER].append({"version": 3, "id": 1003, "file": "ticket_order_placed/v3.avsc",
                                              "references": {"org.techne.common.Subject": 2}})
    manifest_path.write_text(json.dumps(manifest))
    problems = check_catalogue(schema_dir, manifest_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{TICKET_ORDER} v3 is not BACKWARD compatible with v2: field ")
    assert "quantity" in problems[0] and "seat_zone" in problems[0]
    assert "reader_field_missing_default_value" in problems[0] and "type_mismatch" in problems[0]
    # the new version also lacks a recorded fingerprint: all_problems reports it
    assert any("v3" in p and "fingerprint" in p for p in all_problems(schema_dir, manifest_path))


def test_an_incompatible_shared_type_version_is_caught(tmp_path: Path) -> None:
    schema_dir, manifest_path, manifest = _copy(tmp_path)
    subject = json.loads((schema_dir / "subject" / "v2.avsc").read_text())
    subject["fields"] = [f for f in subject["fields"] if f["name"] != "email"]
    subject["fields"].append({"name": "email_hash", "type": "string", "techne.privacy": "direct"})
    (schema_dir / "subject" / "v3.avsc").write_text(json.dumps(subject))
    manifest["types"]["org.techne.common.Subject"]["3"] = "subject/v3.avsc"
    manifest_path.write_text(json.dumps(manifest))
    problems = check_catalogue(schema_dir, manifest_path)
    assert any("Subject (shared type) v3" in p and "email_hash" in p for p in problems)


def test_a_compatible_change_passes_and_removing_a_field_is_backward_compatible() -> None:
    v2 = next(v for v in load_versions() if v.name == TICKET_ORDER and v.version == 2).raw
    evolved = {**v2, "fields": [f for f in v2["fields"] if f["name"] != "hall"]
               + [{"name": "seat_zone", "type": ["null", "string"], "default": None}]}
    assert backward_problems(evolved, v2) == []
    assert fingerprint(evolved) != fingerprint(v2)
