"""The venue's console in a real headless Chromium (Playwright, Debian's /usr/bin/chromium), against
the real bus: broker, gateway, worker, the observatoire's sink and the audit sink (their stores read
through the sinks' read servers while they write) and a real ``techne console`` process.

A venue's user signs in, reads every page, uploads a CSV with a bad row and sees the French row
error before anything is sent, uploads the fixed file (as XLSX), sends it with progress, sees a re-upload
send nothing new, and sees the rows arrive in the observatoire's table; a consent withdrawal then
shows with its timings against the promise. A screenshot of each page is saved under
``tests/artifacts/console/``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from techne.local import free_port
from techne.stack import Stack
from tests.conftest import Bus
from tests.integration.gateway_helpers import signed_post

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts" / "console"
VENUE, OTHER = "gemeaux", "chaillot"
PASSWORD = "correct-horse-battery-staple"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ("N° commande;Date de commande;N° client;E-mail;Code postal;Spectacle;Code séance;Date de séance;Salle;"
          "Genre;Tarif;Canal;Nb places;Montant TTC")


def techne(bus: Bus, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "techne.cli", *args], env={**os.environ, **bus.env}, input=stdin,
                          capture_output=True, text=True, timeout=120, check=True, cwd=REPO)


@pytest.fixture(scope="module")
def console(bus: Bus) -> Iterator[str]:
    """The console's URL, with the worker and the sinks it reads running (sinks stopped at the end)."""
    if "worker" not in bus.stack.services:
        bus.stack.start_worker()
    running = set(bus.stack.services)  # what earlier tests left running stays running
    started = [s.name for s in (bus.stack.start_sink("observatoire"), bus.stack.start_venue_sink(VENUE),
                                bus.stack.start_audit_sink()) if s.name not in running]
    port = free_port()
    own = Stack({**bus.env, "TECHNE_CONSOLE_GATEWAY_URL": bus.gateway_url}, bus.stack.log_dir)
    service = own._spawn("console", ["console", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert service.proc.poll() is None, own.log_tail("console")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, own.log_tail("console")
            time.sleep(0.2)
        techne(bus, "console", "user", "add", "equipe-gemeaux", "--venue", VENUE, "--password-stdin",
               stdin=PASSWORD + "\n")
        yield url
    finally:
        own.stop("console")
        for name in started:
            bus.stack.stop(name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path("/usr/bin/chromium").exists():
        assert not os.environ.get("CI"), "chromium missing in CI: deploy/local/prereqs.sh installs it"
        pytest.skip("chromium missing: deploy/local/prereqs.sh installs Debian's chromium (as root)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def consent(bus: Bus, email: str, kind: str = "consent.granted") -> str:
    payload = {"type": kind, "event_id": str(uuid.uuid4()), "occurred_at": datetime.now(UTC).isoformat(),
               "source_system": "web-form", "customer": {"email": email}, "purpose": "cross_venue_analytics",
               "recipients": ["observatoire"] if kind == "consent.granted" else [],
               "recipient_list_version": "2026-09", "proof_ref": f"form:{VENUE}:test"}
    resp = signed_post(f"{bus.gateway_url}/v1/venues/{VENUE}/events", json.dumps(payload).encode(),
                       bus.venue_secret(VENUE))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["event_id"])


def export(tag: str, emails: list[str], bad_line: int | None = None) -> bytes:
    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%d/%m/%Y %H:%M")
    rows = []
    for i, email in enumerate(emails):
        ordered = "pas une date" if bad_line == i + 2 else day
        rows.append(f"{tag}-{i};{ordered};;{email};92330;Le Misanthrope;MIS-1;28/12/2026 20:30;Grande salle;"
                    f"Théâtre;Plein;Internet;2;45,00")
    return (HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode("cp1252")


def workbook(tag: str, emails: list[str]) -> bytes:
    """The fixed export as an Excel workbook (real date cells), as a venue's spreadsheet saves it."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(";"))
    ordered = (datetime.now(UTC) - timedelta(days=2)).replace(tzinfo=None, microsecond=0, second=0)
    for i, email in enumerate(emails):
        sheet.append([f"{tag}-{i}", ordered, None, email, "92330", "Le Misanthrope", "MIS-1",
                      datetime(2026, 12, 28, 20, 30), "Grande salle", "Théâtre", "Plein", "Internet", 2, 45.0])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def shot(page: Page, name: str) -> None:
    """Save the page, after checking it shows no pseudonym (64 hex digits) nor any other venue's data."""
    html = page.content()
    assert not re.search(r"[0-9a-f]{64}", html), name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def partner_rows(page: Page, url: str) -> int:
    page.goto(f"{url}/lieux/{VENUE}/partage")
    cell = page.locator('[data-rows="observatoire.ticket_orders"]')
    text = cell.inner_text().strip()
    assert re.fullmatch(r"\d+", text), text
    return int(text)


def upload(page: Page, url: str, name: str, content: bytes, mime: str = "text/csv") -> None:
    page.goto(f"{url}/lieux/{VENUE}/import")
    page.set_input_files('input[name="file"]', files=[{"name": name, "mimeType": mime, "buffer": content}])
    page.click('form[enctype] button[type="submit"]')
    page.wait_for_url(re.compile(r"/import/[A-Za-z0-9_-]{22}$"))


def test_a_venue_team_reads_every_page_and_imports_a_file(worker: Bus, console: str, browser: Browser) -> None:
    bus, url = worker, console
    tag = f"CON{uuid.uuid4().hex[:6]}"
    emails = [f"{tag.lower()}-{i}@exemple.fr" for i in range(3)]
    for email in emails:
        consent(bus, email)
    page = browser.new_page(locale="fr-FR")
    page.set_default_timeout(30_000)

    page.goto(f"{url}/lieux/{VENUE}/partage")
    expect(page).to_have_url(re.compile(r"/connexion"))
    shot(page, "01-connexion")
    page.fill('input[name="username"]', "equipe-gemeaux")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    expect(page).to_have_url(re.compile(f"/lieux/{VENUE}/partage$"))
    expect(page.locator("h1")).to_have_text("Ce que je partage")
    before = partner_rows(page, url)
    expect(page.locator("#agreements")).to_contain_text("observatoire")
    expect(page.locator("#agreements")).to_contain_text("730 jours")
    shot(page, "02-partage")

    # a CSV with a bad row: the French row error is shown before anything is sent
    upload(page, url, "ventes-erreur.csv", export(tag, emails, bad_line=3))
    errors = page.locator("#row-errors")
    expect(errors).to_contain_text("Date de commande")
    expect(errors.locator("td.reason")).to_contain_text("date ou heure illisible")
    expect(errors).to_contain_text("Corrigez la colonne « Date de commande » de la ligne 3")
    expect(page.locator("#summary")).to_contain_text("3 lignes lues : 2 valides")
    shot(page, "03-import-erreur")
    page.click("#send-button")  # the two good rows leave; the bad one stays behind
    expect(page.locator("#result")).to_contain_text("Envoyé : 2 nouvelle(s) ligne(s), 0 déjà envoyée(s), 1 refusée(s)")
    expect(page.locator("#file-gone")).to_be_visible()  # sent: the file (personal data) is deleted
    upload_id = page.url.rsplit("/", 1)[1]
    kept = bus.settings.data_dir / "console" / "uploads" / VENUE / upload_id
    assert (kept / "meta.json").is_file() and not (kept / "data").exists()
    expect(page.locator("#row-errors td.reason")).to_contain_text("date ou heure illisible")  # the result stays

    # the fixed file, saved as XLSX: preview, send with progress, rows arrive
    fixed = workbook(tag, emails)
    upload(page, url, "ventes.xlsx", fixed, XLSX)
    expect(page.locator("#read-as")).to_contain_text("classeur Excel")
    expect(page.locator("#row-errors")).to_have_count(0)
    expect(page.locator("#preview")).to_contain_text(emails[0])
    expect(page.locator("#summary")).to_contain_text("3 valides dont 1 nouvelles et 2 déjà envoyées")
    shot(page, "04-import-apercu")
    page.click("#send-button")
    expect(page.locator("#result")).to_contain_text("Envoyé : 1 nouvelle(s) ligne(s), 2 déjà envoyée(s)")
    shot(page, "05-import-envoye")

    upload(page, url, "ventes-encore.xlsx", fixed, XLSX)  # the same file again: nothing new leaves
    expect(page.locator("#summary")).to_contain_text("3 déjà envoyées")
    expect(page.locator("#nothing-new")).to_be_visible()
    expect(page.locator("#send-button")).to_have_count(0)

    deadline = time.monotonic() + 90
    while (after := partner_rows(page, url)) < before + 3:
        assert time.monotonic() < deadline, f"rows of {VENUE} in observatoire.ticket_orders: {before} -> {after}"
        time.sleep(1)
    assert after == before + 3
    expect(page.locator('[data-cell="shared-observatoire"]')).not_to_have_text("0")
    shot(page, "06-partage-lignes-arrivees")

    # a withdrawal: shown with its stop and erasure timings against the promise
    withdrawal = consent(bus, emails[0], "consent.withdrawn")
    deadline = time.monotonic() + 90
    while True:
        page.goto(f"{url}/lieux/{VENUE}/partage")
        row = page.locator("#withdrawals tr", has_text="observatoire")
        if row.count() and "tenu" in row.first.inner_text() and "attente" not in row.first.inner_text():
            break
        assert time.monotonic() < deadline, (f"withdrawal {withdrawal} not shown as erased: "
                                             f"{page.locator('#withdrawals').inner_text()}")
        time.sleep(1)
    assert row.first.inner_text().count("tenu") == 2  # stop <= 5 s and erasure <= 60 s (partner and own store)
    assert "votre propre base" in row.first.inner_text()
    assert partner_rows(page, url) == before + 2
    shot(page, "07-partage-retrait")

    page.goto(f"{url}/lieux/{VENUE}/partage/dpo")
    expect(page.locator("h1")).to_contain_text("Registre de partage")
    expect(page.locator("[data-print]")).to_be_visible()
    shot(page, "08-dpo")

    page.goto(f"{url}/lieux/{VENUE}/sources")
    expect(page.locator("#sources")).to_contain_text("Import de fichier")
    expect(page.locator("#sources")).to_contain_text("Webhook signé")
    imports = page.locator("#sources tr", has_text="Import de fichier")
    expect(imports.locator("td").nth(4)).to_have_text("1")  # the bad row of the first file
    expect(page.locator("#rejections")).to_contain_text("date ou heure illisible")
    expect(page.locator("#rejections")).to_contain_text("Corrigez la colonne « Date de commande » de la ligne 3")
    shot(page, "09-sources")

    page.goto(f"{url}/lieux/{VENUE}/consentements")
    expect(page.locator("#counts")).to_contain_text("donnés")
    expect(page.locator("#counts")).to_contain_text("retirés")
    page.fill('textarea[name="emails"]', f"{emails[1]}\n{emails[2].upper()}\n")
    shot(page, "10-consentements")
    with page.expect_download() as download:
        page.click("#links-button")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "email;lien_preferences" and len(lines) == 3
    links = dict(line.split(";") for line in lines[1:])
    assert set(links) == {emails[1], emails[2]}
    assert all(link.startswith(f"{bus.gateway_url}/v1/preferences/") and emails[1] not in link
               for link in links.values())
    centre = httpx.get(links[emails[1]], timeout=30)
    assert centre.status_code == 200 and "Gémeaux" in centre.text  # the person's page at the gateway

    page.goto(f"{url}/lieux/{VENUE}/analyses")
    expect(page.locator("h1")).to_have_text("Analyses")
    frame = page.frame_locator("iframe.report")
    expect(frame.locator("body")).to_have_attribute("data-rendered", "ok")
    shot(page, "11-analyses")

    page.goto(f"{url}/lieux/{VENUE}/partage?depuis=2026-01-01")
    page.click("header .langs >> text=EN")  # English, the chosen period kept
    expect(page).to_have_url(re.compile(r"depuis=2026-01-01.*lang=en"))
    expect(page.locator("h1")).to_have_text("What I share")
    expect(page.locator('input[name="depuis"]')).to_have_value("2026-01-01")
    page.goto(f"{url}/lieux/{OTHER}/partage?lang=fr")  # another venue's page, from the browser
    expect(page.locator("[role=alert]")).to_contain_text("Accès refusé")
    page.close()
