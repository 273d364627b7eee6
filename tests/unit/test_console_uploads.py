"""Uploaded files hold personal data: deleted once sent or after a day, their result kept."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core.settings import Settings
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
