"""The consent CSV profile (``consentements``) on the real broker: granted / withdrawn rows become
consent events with purpose, recipients, list version and collection point; bad rows are reported
by line and column (French and English reasons name no value); a re-import sends nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.topics import raw_topic
from tests.conftest import Bus
from tests.integration.kafka_helpers import decodable, end_offsets, read_all

pytestmark = pytest.mark.integration
VENUE = "gemeaux"
HEADER = "E-mail;Finalité;Statut;Date;Destinataires;Version de la liste;Lieu de recueil"


def run_import(bus: Bus, path: Path) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "import", "csv", str(path), "--venue", VENUE,
                           "--profile", "consentements", "--json"], env={**os.environ, **bus.env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def test_consent_csv_rows_errors_and_idempotence(bus: Bus, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    rows = [f"anna.{tag}@exemple.fr;Analyses entre lieux;Accordé;02/11/2026 10:15;observatoire;2026-09;guichet",
            f"anna.{tag}@exemple.fr;Marketing;Accordé;02/11/2026 10:15;reseau-danse;2026-09;guichet",
            f"anna.{tag}@exemple.fr;Marketing;Retiré;20/11/2026 18:00;reseau-danse;2026-09;formulaire papier",
            f"bob.{tag}@exemple.fr;Espionnage;Accordé;02/11/2026 10:15;observatoire;2026-09;guichet",  # line 5
            f"carl.{tag}@exemple.fr;Marketing;Peut-être;02/11/2026 10:15;reseau-danse;2026-09;guichet",  # line 6
            f"dora.{tag}@exemple.fr;Marketing;Accordé;hier;reseau-danse;2026-09;guichet"]  # line 7
    path = tmp_path / "consentements.csv"
    path.write_bytes((HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode("cp1252"))
    code, report = run_import(bus, path)
    assert code == 1 and (report["rows"], report["sent"], report["rejected"]) == (6, 3, 3)
    assert {(e["line"], e["column"]) for e in report["errors"]} == {(5, "Finalité"), (6, "Statut"), (7, "Date")}
    assert all("Espionnage" not in e["reason"] and "hier" not in e["reason"] for e in report["errors"])

    values = asyncio.run(read_all(bus.bootstrap, raw_topic(VENUE)))
    mine = [r for r in decodable(values, bus.bootstrap)
            if str(r.get("subject", {}).get("email", "")).endswith(f".{tag}@exemple.fr")]
    got = sorted((r["event_type"], r["purpose"], tuple(r["recipients"]), r["recipient_list_version"],
                  r["collection_point"], r["collection_method"]) for r in mine)
    assert got == [("consent.granted", "cross_venue_analytics", ("observatoire",), "2026-09", "guichet", "import"),
                   ("consent.granted", "marketing", ("reseau-danse",), "2026-09", "guichet", "import"),
                   ("consent.withdrawn", "marketing", ("reseau-danse",), "2026-09", "formulaire papier", "import")]

    before = asyncio.run(end_offsets(bus.bootstrap, [raw_topic(VENUE)]))
    _, again = run_import(bus, path)
    assert (again["sent"], again["already_imported"]) == (0, 3)
    assert asyncio.run(end_offsets(bus.bootstrap, [raw_topic(VENUE)])) == before
