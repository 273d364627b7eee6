"""``techne init``: venue entry, webhook secret (0600, shown once, never logged), draft agreements."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.settings import DEFAULT_AGREEMENTS, DEFAULT_VENUES, REPO_ROOT
from core.venues import load_venues
from insights import onboard
from schemas.agreements import Agreement, load_agreements
from techne.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(DEFAULT_VENUES, tmp_path / "venues.yaml")
    shutil.copytree(DEFAULT_AGREEMENTS, tmp_path / "agreements")
    monkeypatch.setenv("TECHNE_VENUES_FILE", str(tmp_path / "venues.yaml"))
    monkeypatch.setenv("TECHNE_AGREEMENTS_DIR", str(tmp_path / "agreements"))
    monkeypatch.setenv("TECHNE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_non_interactive_init_writes_venue_secret_and_drafts(env: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(app, [
        "init", "--no-input", "--name", "Théâtre de la Ville", "--city", "Paris", "--ticketing", "secutix",
        "--connection", "webhook", "--share", "observatoire:cross_venue_analytics:territoire",
        "--share", "reseau-danse:marketing"])
    assert result.exit_code == 0, result.output
    venues = load_venues(env / "venues.yaml")
    assert venues["theatre-de-la-ville"].name == "Théâtre de la Ville"
    assert "opera-lyon" in venues and "# Venues known to the bus" in (env / "venues.yaml").read_text()
    secret_file = env / "data" / "secrets" / "theatre-de-la-ville.whsec"
    secret = secret_file.read_text().strip()
    assert secret.startswith("whsec_") and len(secret) > 40
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    assert result.output.count(secret) == 1  # shown once
    assert secret not in caplog.text  # never logged
    drafts = sorted((env / "agreements" / "drafts").glob("*.yaml"))
    assert [p.name[:-10] for p in drafts] == ["dsa-theatre-de-la-ville-observatoire",
                                              "dsa-theatre-de-la-ville-reseau-danse"]
    parsed = [Agreement.model_validate(yaml.safe_load(p.read_text())) for p in drafts]
    assert {a.partner for a in parsed} == {"observatoire", "reseau-danse"}
    assert all(a.provider_venues == ["theatre-de-la-ville"] and a.min_cell_size == 10 for a in parsed)
    assert "departement" in next(a for a in parsed if a.partner == "observatoire").allowed_fields
    # drafts are not active: the bus loads the agreements directory without them
    assert {a.id for a in load_agreements(env / "agreements")} == {a.id for a in load_agreements(DEFAULT_AGREEMENTS)}
    assert "Prochaines étapes" in result.output and "techne report sharing --venue theatre-de-la-ville" in result.output
    assert "/v1/venues/theatre-de-la-ville/sources/secutix" in result.output


def test_interactive_init_asks_in_french(env: Path) -> None:
    answers = "\n".join(["Le Quai", "", "Angers", "rodrigue", "csv", "observatoire", "cross_venue_analytics",
                         "essentiel"]) + "\n"
    result = CliRunner().invoke(app, ["init"], input=answers)
    assert result.exit_code == 0, result.output
    assert "Nom du lieu" in result.output and "Avec quels partenaires partager" in result.output
    assert "le-quai" in load_venues(env / "venues.yaml")
    assert "techne import csv export.csv --venue le-quai --profile billetterie-fr" in result.output
    assert len(list((env / "agreements" / "drafts").glob("dsa-le-quai-observatoire-*.yaml"))) == 1


def test_init_refuses_an_existing_venue_and_writes_nothing(env: Path) -> None:
    before = (env / "venues.yaml").read_text()
    result = CliRunner().invoke(app, ["init", "--no-input", "--name", "Chaillot", "--id", "chaillot",
                                      "--connection", "csv", "--no-share"])
    assert result.exit_code == 2 and "le lieu « chaillot » existe déjà" in result.output
    assert (env / "venues.yaml").read_text() == before
    assert not (env / "data" / "secrets").exists()


def test_init_refuses_an_invalid_share_before_writing(env: Path) -> None:
    result = CliRunner().invoke(app, ["init", "--no-input", "--name", "Le Lieu", "--connection", "csv",
                                      "--share", "observatoire:audience_measurement"])
    assert result.exit_code == 2 and "audience_measurement" in result.output
    assert "le-lieu" not in load_venues(env / "venues.yaml")


def test_a_second_secret_is_never_overwritten(tmp_path: Path) -> None:
    answers = onboard.Answers("Le Lieu", "le-lieu", "", "autre", "csv")
    venues = tmp_path / "venues.yaml"
    first = onboard.apply(answers, venues, tmp_path / "agreements", tmp_path / "data")
    venues.unlink()  # the venue entry gone, the secret still there
    with pytest.raises(onboard.ConfigError, match="already exists"):
        onboard.apply(answers, venues, tmp_path / "agreements", tmp_path / "data")
    assert first.secret_file.read_text().strip() == first.secret
    assert first.secret not in repr(first)


def test_slug() -> None:
    assert onboard.slug("  Théâtre national de Strasbourg – TNS ") == "theatre-national-de-strasbourg-tns"


def _init_where_i_stand(cwd: Path, *args: str, answers: str = "") -> subprocess.CompletedProcess[str]:
    """``techne init`` as an operator runs it: a real process, answers piped on stdin, in ``cwd``
    (holding its own ``deploy/`` directory), with no TECHNE_* setting."""
    shutil.copytree(REPO_ROOT / "deploy" / "agreements", cwd / "deploy" / "agreements")
    shutil.copy(REPO_ROOT / "deploy" / "venues.yaml", cwd / "deploy" / "venues.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECHNE_")}
    return subprocess.run([sys.executable, "-m", "techne.cli", "init", *args], input=answers, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_each_refused_answer_is_explained_in_french_and_asked_again(tmp_path: Path) -> None:
    shipped = (REPO_ROOT / "deploy" / "venues.yaml").read_text(encoding="utf-8")
    answers = "\n".join([
        "Le Quai",
        "Le Quai!", "chaillot", "le-quai",          # short id: bad form, taken, then fine
        "Angers",
        "ticketmaster", "rodrigue",                 # ticketing tool
        "ftp", "csv",                               # connection
        "inconnu", "observatoire",                  # partners
        "tout_savoir", "cross_venue_analytics",     # purpose
        "tout", "essentiel",                        # data shared
    ]) + "\n"
    proc = _init_where_i_stand(tmp_path, answers=answers)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    refusals = proc.stderr
    for expected in ("identifiant « Le Quai! » : 2 à 63 caractères", "le lieu « chaillot » existe déjà",
                     "outil de billetterie inconnu : « ticketmaster »", "mode de connexion inconnu : « ftp »",
                     "partenaire inconnu : « inconnu »", "finalité inconnue : « tout_savoir »",
                     "jeu de données inconnu : « tout »"):
        assert expected in refusals, refusals
    assert "Traceback" not in proc.stdout + proc.stderr and "validation error" not in proc.stdout + proc.stderr
    # written where the operator stands, never into the package's tree
    assert set(load_venues(tmp_path / "deploy" / "venues.yaml")) >= {"le-quai", "opera-lyon"}
    assert len(list((tmp_path / "deploy" / "agreements" / "drafts").glob("dsa-le-quai-observatoire-*.yaml"))) == 1
    assert (tmp_path / ".techne" / "secrets" / "le-quai.whsec").exists()
    assert (REPO_ROOT / "deploy" / "venues.yaml").read_text(encoding="utf-8") == shipped
    assert not (REPO_ROOT / "deploy" / "agreements" / "drafts").exists()


@pytest.mark.parametrize(("share", "expected"), [
    ("inconnu:cross_venue_analytics", "partenaire inconnu : « inconnu »"),
    ("observatoire:tout_savoir", "finalité inconnue : « tout_savoir »"),
    ("observatoire:cross_venue_analytics:tout", "jeu de données inconnu : « tout »"),
    ("observatoire", "partage « observatoire » : attendu partenaire:finalité"),
])
def test_without_a_terminal_a_refused_answer_is_one_french_line_and_nothing_is_written(
        tmp_path: Path, share: str, expected: str) -> None:
    proc = _init_where_i_stand(tmp_path, "--no-input", "--name", "Le Quai", "--connection", "csv", "--share", share)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy"] and not (tmp_path / ".techne").exists()
    assert "Le Quai" not in (tmp_path / "deploy" / "venues.yaml").read_text(encoding="utf-8")
