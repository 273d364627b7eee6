"""`techne deploy init`: a deploy/.env with a strong random value for every variable the compose
stack interpolates, created 0600, never overwritten, and a list of what is left to do."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from core.venues import load_venues
from techne.cli import app
from techne.deploy_cli import SECRETS
from tests.support.deploy import parse_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NOT_SECRET = {"GRAFANA_ADMIN_USER", "TECHNE_PUBLIC_HOST", "TECHNE_REGISTRY_HOST", "TECHNE_CONSOLE_HOST", "TECHNE_TLS"}




@pytest.fixture
def deploy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "deploy"
    target.mkdir()
    shutil.copy(ROOT / "deploy" / "venues.yaml", target / "venues.yaml")
    return target


def test_init_writes_every_compose_variable_with_strong_secrets(deploy_dir: Path) -> None:
    result = CliRunner().invoke(app, ["deploy", "init", "--dir", str(deploy_dir), "--public-host", "bus.example.org",
                                      "--registry-host", "schemas.example.org", "--tls", "ops@example.org"])
    assert result.exit_code == 0, result.output
    env_file = deploy_dir / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = parse_env(env_file.read_text())

    interpolated = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    assert interpolated, "docker-compose.yml interpolates its secrets"
    assert not interpolated - set(values), f"missing from .env: {sorted(interpolated - set(values))}"
    assert set(SECRETS) == interpolated - NOT_SECRET
    for name in SECRETS:
        assert values[name], name
        assert values[name] not in result.output, f"{name} printed"
    assert len({values[n] for n in SECRETS}) == len(SECRETS), "every secret drawn separately"
    for name in ("TECHNE_SUBJECT_KEY", "TECHNE_KAFKA_PASSWORD", "TECHNE_KAFKA_CONTROLLER_PASSWORD",
                 "TECHNE_CLICKHOUSE_PASSWORD", "TECHNE_GRAFANA_CLICKHOUSE_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", values[name]), name  # 256 bits, safe in JAAS and XML
    webhook = json.loads(values["TECHNE_VENUE_SECRETS"])
    assert set(webhook) == set(load_venues(deploy_dir / "venues.yaml"))
    for (secret,) in webhook.values():
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert (values["TECHNE_PUBLIC_HOST"], values["TECHNE_TLS"]) == ("bus.example.org", "ops@example.org")

    # the bus's own settings accept them (lengths, JSON shapes)
    settings = Settings(subject_key=values["TECHNE_SUBJECT_KEY"], venue_secrets=webhook,
                        pseudonym_keys=json.loads(values["TECHNE_PSEUDONYM_KEYS"]))
    assert settings.require_subject_key() and settings.current_pseudonym_key()[0] == 1

    hook = deploy_dir / "alertmanager" / "webhook-url"
    assert hook.read_text() == "" and stat.S_IMODE(hook.stat().st_mode) == 0o600
    assert len(values["TECHNE_CONSOLE_SECRET"]) >= 32
    for todo in ("DNS: bus.example.org, schemas.example.org and console.localhost", str(hook),
                 "docker compose --env-file"):
        assert todo in result.output


def test_init_refuses_to_overwrite(deploy_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["deploy", "init", "--dir", str(deploy_dir)]).exit_code == 0
    first = (deploy_dir / ".env").read_text()
    again = runner.invoke(app, ["deploy", "init", "--dir", str(deploy_dir)])
    assert again.exit_code == 1 and "not overwritten" in again.output
    assert (deploy_dir / ".env").read_text() == first


def test_compose_resolves_the_generated_env(deploy_dir: Path) -> None:
    """The file as docker compose reads it: the JSON secrets reach the services intact."""
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                         check=False).returncode != 0:
        assert not os.environ.get("CI"), "no docker compose CLI in CI: deploy/local/compose-plugin.sh failed"
        pytest.skip("no docker compose plugin (deploy/local/compose-plugin.sh builds it)")
    assert CliRunner().invoke(app, ["deploy", "init", "--dir", str(deploy_dir)]).exit_code == 0
    values = parse_env((deploy_dir / ".env").read_text())
    result = subprocess.run(["docker", "compose", "--env-file", str(deploy_dir / ".env"), "-f", str(COMPOSE),
                             "config", "--format", "json"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert services["gateway"]["environment"]["TECHNE_VENUE_SECRETS"] == values["TECHNE_VENUE_SECRETS"]
    assert services["worker"]["environment"]["TECHNE_PSEUDONYM_KEYS"] == values["TECHNE_PSEUDONYM_KEYS"]
    assert services["kafka"]["environment"]["TECHNE_KAFKA_PASSWORD"] == values["TECHNE_KAFKA_PASSWORD"]
