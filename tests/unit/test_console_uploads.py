"""Uploaded files hold personal data: deleted once sent or after a day, their result kept."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import stat
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core.settings import Settings
from producers.csv_import import read_profile_table
from producers.csv_profiles import load_profile
from techne.console import uploads
from techne.console.app import create_app
from techne.console.security import ConsoleSettings
from techne.console.users import UserStore

VENUE = "gemeaux"
PASSWORD = "a-long-enough-password"


def test_an_unsent_file_is_deleted_after_a_day_and_its_page_says_so(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, subject_key="k" * 32)
    old = uploads.save(settings, VENUE, "ventes.csv", b"E-mail;x\r\nlea@exemple.fr;1\r\n", "billetterie-fr", "u")
    fresh = uploads.save(settings, VENUE, "autres.csv", b"E-mail;x\r\nmax@exemple.fr;1\r\n", "billetterie-fr", "u")
    meta = uploads.meta(settings, VENUE, old)
    assert meta is not None
    now = float(meta["uploaded_at"]) + uploads.KEEP_S + 1
    assert uploads.purge(settings, VENUE, now=now - 2 * uploads.KEEP_S) == 0
    assert uploads.purge(settings, VENUE, now=now) == 2
    assert uploads.data(settings, VENUE, old) is None and uploads.meta(settings, VENUE, old) is not None
    assert not list((tmp_path / "console" / "uploads" / VENUE).glob("*/data"))
    assert fresh in {u["id"] for u in uploads.recent(settings, VENUE)}

    users = UserStore(tmp_path / "console" / "console.sqlite")
    users.add("equipe", venue=VENUE, password=PASSWORD)
    c = TestClient(create_app(settings, ConsoleSettings.model_validate({}), users), follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/connexion").text)
    assert token
    c.post("/connexion", data={"csrf": token.group(1), "username": "equipe", "password": PASSWORD})
    page = c.get(f"/lieux/{VENUE}/import/{old}")
    assert page.status_code == 200 and 'id="file-gone"' in page.text and "lea@exemple.fr" not in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    assert c.post(f"/lieux/{VENUE}/import/{old}/envoyer", data={"csrf": csrf.group(1)}).status_code == 404
    assert c.get(f"/lieux/{VENUE}/import/{old}/erreurs.csv").status_code == 200



def _age(settings: Settings, venue: str, upload_id: str) -> None:
    """Make an upload older than KEEP_S (its meta's upload time moved back)."""
    path = settings.data_dir / "console" / "uploads" / venue / upload_id / "meta.json"
    meta = json.loads(path.read_text())
    meta["uploaded_at"] = time.time() - uploads.KEEP_S - 1
    path.write_text(json.dumps(meta))


def test_old_files_are_deleted_without_anyone_opening_their_venues_pages(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The promise "deleted a day after its upload" must not wait for a visit to the venue's import
    page: the console purges every venue at start and every PURGE_EVERY_S, and never reads an
    expired file meanwhile."""
    settings = Settings(data_dir=tmp_path, subject_key="k" * 32)
    content = b"E-mail;x\r\nlea@exemple.fr;1\r\n"
    ids = {venue: uploads.save(settings, venue, "ventes.csv", content, "billetterie-fr", "u")
           for venue in (VENUE, "chaillot")}
    for venue, upload_id in ids.items():
        _age(settings, venue, upload_id)
    assert uploads.data(settings, VENUE, ids[VENUE]) is None  # expired: not read, deleted on the spot
    assert not (tmp_path / "console" / "uploads" / VENUE / ids[VENUE] / "data").exists()
    assert (tmp_path / "console" / "uploads" / "chaillot" / ids["chaillot"] / "data").exists()

    users = UserStore(tmp_path / "console" / "console.sqlite")
    monkeypatch.setattr(uploads, "PURGE_EVERY_S", 0.05)
    with TestClient(create_app(settings, ConsoleSettings.model_validate({}), users)):
        assert not list((tmp_path / "console" / "uploads").glob("*/*/data"))  # purged at start
        assert uploads.meta(settings, "chaillot", ids["chaillot"]) is not None  # the result and metadata stay
        again = uploads.save(settings, "chaillot", "autres.csv", content, "billetterie-fr", "u")
        _age(settings, "chaillot", again)
        data = tmp_path / "console" / "uploads" / "chaillot" / again / "data"
        deadline = time.monotonic() + 5
        while data.exists() and time.monotonic() < deadline:  # no page opened: the periodic purge
            time.sleep(0.02)
        assert not data.exists()


def test_a_send_that_fails_unexpectedly_ends_failed_and_can_be_retried(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Only TechneError ended a send as "failed": any other error (a full disk under the import
    ledger, a database error) left it "running" for ever, the page polling and its send button
    gone until the console restarted."""
    settings = Settings(data_dir=tmp_path, subject_key="k" * 32)
    profile = load_profile("billetterie-fr")
    content = ("N° commande;Date de commande;N° client;E-mail;Code postal;Spectacle;Code séance;Date de séance;Salle;"
               "Genre;Tarif;Canal;Nb places;Montant TTC\r\n"
               "C-1;01/12/2026 10:00;;lea@exemple.fr;92330;Le Misanthrope;MIS-1;28/12/2026 20:30;Grande salle;"
               "Théâtre;Plein;Internet;2;45,00\r\n").encode("cp1252")
    upload_id = uploads.save(settings, VENUE, "ventes.csv", content, profile.name, "u")
    table = read_profile_table(content, "ventes.csv", profile)
    calls = []

    async def failing(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(uploads, "run_import", failing)
    sender = uploads.Sender(settings)

    async def send() -> uploads.Progress:
        progress = sender.start(VENUE, upload_id, table, profile)
        deadline = time.monotonic() + 5
        while progress.state == "running" and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return progress

    first = asyncio.run(send())
    assert first.state == "failed" and first.error == "OperationalError"
    assert uploads.data(settings, VENUE, upload_id) == content  # not sent: the file stays (until its day is up)
    assert asyncio.run(send()) is not first and len(calls) == 2  # a new attempt is possible


EXPORT = ("N° commande;Date de commande;N° client;E-mail;Code postal;Spectacle;Code séance;Date de séance;Salle;"
          "Genre;Tarif;Canal;Nb places;Montant TTC\r\n"
          "C-1;01/12/2026 10:00;;lea@exemple.fr;92330;Le Misanthrope;MIS-1;28/12/2026 20:30;Grande salle;"
          "Théâtre;Plein;Internet;2;45,00\r\n").encode("cp1252")


def test_the_import_page_uses_the_configured_profiles_and_never_a_path(tmp_path: Path) -> None:
    """The console read the profiles of ./deploy/import-profiles whatever TECHNE_IMPORT_PROFILES_DIR
    said (an operator's own profile was missing from the page, and a console started elsewhere had
    none), and took the form's profile as a path: any .yaml file of the server was read, and its
    content quoted back in the error."""
    shipped = Path("deploy/import-profiles/billetterie-fr.yaml").read_text(encoding="utf-8")
    mine = tmp_path / "profiles"
    mine.mkdir()
    (mine / "mon-export.yaml").write_text(shipped.replace("name: billetterie-fr", "name: mon-export"),
                                          encoding="utf-8")
    private = tmp_path / "private.yaml"
    private.write_text("name: x\nevent_type: ticket.order_placed\npassword: TOPSECRET-42\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", subject_key="k" * 32, import_profiles_dir=mine)
    users = UserStore(tmp_path / "data" / "console" / "console.sqlite")
    users.add("equipe", venue=VENUE, password=PASSWORD)
    c = TestClient(create_app(settings, ConsoleSettings.model_validate({}), users), follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/connexion").text)
    assert token
    c.post("/connexion", data={"csrf": token.group(1), "username": "equipe", "password": PASSWORD})
    page = c.get(f"/lieux/{VENUE}/import")
    assert 'value="mon-export"' in page.text and 'value="billetterie-fr"' not in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf

    for chosen in ("mon-export", "auto"):
        sent = c.post(f"/lieux/{VENUE}/import", data={"csrf": csrf.group(1), "profile": chosen},
                      files={"file": ("ventes.csv", EXPORT, "text/csv")})
        assert sent.status_code == 303, (chosen, sent.text[-500:])
        upload = c.get(sent.headers["location"])
        assert upload.status_code == 200 and "mon-export" in upload.text

    for chosen in (str(private), "../private", "billetterie-fr"):
        refused = c.post(f"/lieux/{VENUE}/import", data={"csrf": csrf.group(1), "profile": chosen},
                         files={"file": ("ventes.csv", EXPORT, "text/csv")})
        assert refused.status_code == 400 and "TOPSECRET" not in refused.text, chosen
        assert "mon-export" in refused.text  # the reason lists the known profiles


def test_the_consoles_files_are_its_owners_only(tmp_path: Path) -> None:
    """Uploaded exports hold personal data in clear, console.sqlite the password hashes: they were
    written with the umask's modes (0644 files under 0755 directories), readable by every local
    user of a shared host."""
    settings = Settings(data_dir=tmp_path, subject_key="k" * 32)
    (tmp_path / "console").mkdir(mode=0o755)  # e.g. left by an older version
    users = UserStore(tmp_path / "console" / "console.sqlite")
    create_app(settings, ConsoleSettings.model_validate({}), users)
    upload_id = uploads.save(settings, VENUE, "ventes.csv", EXPORT, "billetterie-fr", "u")
    home = tmp_path / "console"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "uploads" / VENUE / upload_id).stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "uploads" / VENUE / upload_id / "data").stat().st_mode) == 0o600
