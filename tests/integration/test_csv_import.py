"""``techne import csv`` on the real broker: a Latin-1 / UTF-8-with-BOM French export, bad rows
reported by line and column without stopping the file, and a re-import that sends nothing."""

from __future__ import annotations

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
HEADER = ("N° commande;Date de commande;N° client;E-mail;Code postal;Spectacle;Code séance;Date de séance;Salle;"
          "Genre;Tarif;Canal;Nb places;Montant TTC")


def _export(tag: str) -> str:
    rows = [
        f"{tag}-1;02/11/2026 10:15;;lea.martin@exemple.fr;92330;Le Misanthrope – Molière;MIS-1;"
        f"28/11/2026 20h30;Grande salle;Théâtre;Plein;Internet;2;45,00",
        f"{tag}-2;02/11/2026 11:02;CL-77;;92160;Quatuor Ébène;QE-1;12 déc. 2026 à 20h;Grande salle;Musique;"
        f"Réduit;Guichet;1;1 234,50 €",
        f"{tag}-3;pas une date;;a@b.fr;92330;Tosca;T-1;01/12/2026 20:00;;Opéra;Plein;Internet;2;90,00",   # line 4
        f"{tag}-4;02/11/2026 12:00;;c@d.fr;92330;Tosca;T-1;01/12/2026 20:00;;Opéra;Tarif secret;Web;deux;90,00",
        f"{tag}-5;02/11/2026 12:30;;;92330;Tosca;T-1;01/12/2026 20:00;;Opéra;Plein;Web;1;45,00",  # no identity
        "",
        f"{tag}-6;03/11/2026 09:00;;e@f.fr;75014;Crowd;CR-1;05/12/2026 19:30;Studio;Danse;Jeune;Web;3;36,00",
    ]
    return HEADER + "\r\n" + "\r\n".join(rows) + "\r\n"


def _run(bus: Bus, path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, **bus.env}
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "import", "csv", str(path), "--venue", VENUE,
                           "--profile", "billetterie-fr", "--json", *extra], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig"])
def test_import_reports_bad_rows_and_reimport_sends_nothing(bus: Bus, tmp_path: Path, encoding: str) -> None:
    tag = f"CMD{uuid.uuid4().hex[:6]}"
    path = tmp_path / "ventes.csv"
    path.write_bytes(_export(tag).encode(encoding))
    code, report = _run(bus, path)
    assert code == 1  # some rows rejected
    assert (report["rows"], report["sent"], report["rejected"]) == (6, 3, 3)
    errors = {(e["line"], e["column"]) for e in report["errors"]}
    assert {(4, "Date de commande"), (5, "Tarif"), (5, "Nb places"), (6, "customer")} <= errors, report["errors"]
    assert all("pas une date" not in e["reason"] and "deux" not in e["reason"] for e in report["errors"])

    records = decodable(asyncio_read(bus), bus.bootstrap)
    mine = {r["order_id"]: r for r in records if str(r.get("order_id", "")).startswith(tag)}
    assert set(mine) == {f"{tag}-1", f"{tag}-2", f"{tag}-6"}
    assert mine[f"{tag}-2"]["amount_minor"] == 123450
    assert mine[f"{tag}-2"]["production"] == "Quatuor Ébène"
    assert mine[f"{tag}-1"]["performance_at"].isoformat() == "2026-11-28T19:30:00+00:00"  # 20h30 Paris time
    assert mine[f"{tag}-1"]["subject"]["email"] == "lea.martin@exemple.fr"

    before = _offsets(bus)
    _, again = _run(bus, path)
    assert (again["sent"], again["already_imported"]) == (0, 3)
    assert _offsets(bus) == before


def test_dry_run_and_error_report_file(bus: Bus, tmp_path: Path) -> None:
    path = tmp_path / "ventes.csv"
    path.write_bytes(_export(f"DRY{uuid.uuid4().hex[:6]}").encode("cp1252"))
    before = _offsets(bus)
    out = tmp_path / "erreurs.csv"
    _, report = _run(bus, path, "--dry-run", "--errors-out", str(out))
    assert report["sent"] == 3 and _offsets(bus) == before
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "ligne;colonne;raison" and len(lines) == 1 + len(report["errors"])


def test_missing_column_is_a_clear_error(bus: Bus, tmp_path: Path) -> None:
    path = tmp_path / "autre.csv"
    path.write_text("Commande;Montant\nX;1\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "import", "csv", str(path), "--venue", VENUE,
                           "--profile", "billetterie-fr"], env={**os.environ, **bus.env}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "columns missing" in proc.stderr and "N° commande" in proc.stderr


def test_comma_csv_and_xlsx_exports_are_imported(bus: Bus, tmp_path: Path) -> None:
    """The same export saved by a spreadsheet with commas, then as a workbook: each row sent once."""
    from openpyxl import Workbook

    tag = f"XL{uuid.uuid4().hex[:6]}"
    lines = [line.split(";") for line in _export(tag).splitlines() if line]
    good = [lines[0], lines[1], lines[2], lines[6]]  # header and the three valid rows
    comma = tmp_path / "ventes-virgules.csv"
    comma.write_text("\n".join(",".join(f'"{c}"' if "," in c else c for c in row) for row in good) + "\n",
                     encoding="utf-8")
    code, report = _run(bus, comma)
    assert code == 0 and (report["rows"], report["sent"], report["delimiter"]) == (3, 3, ","), report

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in good:
        sheet.append([c.replace(tag, tag + "x") for c in row])
    xlsx = tmp_path / "ventes.xlsx"
    book.save(xlsx)
    code, report = _run(bus, xlsx)
    assert code == 0 and (report["rows"], report["sent"], report["format"]) == (3, 3, "xlsx"), report
    mine = {r["order_id"] for r in decodable(asyncio_read(bus)) if str(r.get("order_id", "")).startswith(tag)}
    assert mine == {f"{tag}-1", f"{tag}-2", f"{tag}-6", f"{tag}x-1", f"{tag}x-2", f"{tag}x-6"}


def test_row_errors_are_printed_in_french_by_default(bus: Bus, tmp_path: Path) -> None:
    path = tmp_path / "ventes.csv"
    path.write_bytes(_export(f"FR{uuid.uuid4().hex[:6]}").encode("cp1252"))
    cmd = [sys.executable, "-m", "techne.cli", "import", "csv", str(path), "--venue", VENUE, "--profile",
           "billetterie-fr", "--dry-run"]
    fr = subprocess.run(cmd, env={**os.environ, **bus.env}, capture_output=True, text=True, timeout=120, check=False)
    assert fr.returncode == 1
    assert "6 lignes : 3 seraient envoyées" in fr.stdout
    assert "ligne 4, colonne « Date de commande » : date ou heure illisible" in fr.stdout
    assert "ligne 5, colonne « Tarif » : libellé inconnu" in fr.stdout
    en = subprocess.run([*cmd, "--lang", "en"], env={**os.environ, **bus.env}, capture_output=True, text=True,
                        timeout=120, check=False)
    assert "line 4, column 'Date de commande': not a date/time" in en.stdout


def test_unbalanced_quote_is_refused_before_anything_is_sent(bus: Bus, tmp_path: Path) -> None:
    lines = _export(f"Q{uuid.uuid4().hex[:6]}").split("\r\n")
    lines[1] = lines[1].replace("Le Misanthrope", '"Le Misanthrope')  # line 2
    lines[3] = lines[3].replace(";Tosca;", ';Tosca";')  # line 4
    path = tmp_path / "ventes.csv"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    before = _offsets(bus)
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "import", "csv", str(path), "--venue", VENUE,
                           "--profile", "billetterie-fr"], env={**os.environ, **bus.env}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "guillemet non fermé ligne 2 : les lignes 2 à 4 ont été fusionnées" in proc.stderr
    assert _offsets(bus) == before


def asyncio_read(bus: Bus) -> list[bytes]:
    import asyncio

    return asyncio.run(read_all(bus.bootstrap, raw_topic(VENUE)))


def _offsets(bus: Bus) -> dict[str, int]:
    import asyncio

    return asyncio.run(end_offsets(bus.bootstrap, [raw_topic(VENUE)]))
