"""CLI of the server deployment: ``techne deploy init`` and ``techne backup create|restore``.

Registered by :func:`register` (one line in :mod:`techne.cli`).

``backup create|restore`` cover the partner, venue and audit stores (:mod:`techne.backup`), ``backup
ledger|restore-ledger`` the consent ledger in Kafka (:mod:`techne.ledger_backup`).

``deploy init`` writes ``deploy/.env`` for docker-compose.yml with a fresh random value for every
secret the stack interpolates (:data:`SECRETS`; tests/unit/test_deploy_init.py checks the list
against the compose file), mode 0600, created exclusively: an existing file is never
overwritten (exit 1). It also creates the empty, 0600 alert receiver file
(``deploy/alertmanager/webhook-url``) when missing, and prints what the operator must still do.
No secret is printed.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import TechneError

deploy_app = typer.Typer(help="Server deployment (docker-compose.yml): secrets bootstrap.", no_args_is_help=True)
backup_app = typer.Typer(help="Back up and restore the partner stores, the venues' own stores and the audit store.",
                         no_args_is_help=True)
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Local state directory (default ./.techne).")]


def _token() -> str:
    """256 random bits, URL-safe (letters, digits, - and _: safe in .env, JAAS and XML)."""
    return secrets.token_urlsafe(32)


def _webhook_secrets(venues: list[str]) -> str:
    return json.dumps({v: ["whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()] for v in venues})


SECRETS: dict[str, Callable[[list[str]], str]] = {
    "TECHNE_SUBJECT_KEY": lambda _: _token(),
    "TECHNE_VENUE_SECRETS": _webhook_secrets,
    "TECHNE_PSEUDONYM_KEYS": lambda _: json.dumps({"1": _token()}),
    "TECHNE_DATAKEY_MASTER_KEYS": lambda _: json.dumps({"1": _token()}),
    "TECHNE_KAFKA_PASSWORD": lambda _: _token(),
    "TECHNE_KAFKA_CONTROLLER_PASSWORD": lambda _: _token(),
    "TECHNE_CLICKHOUSE_PASSWORD": lambda _: _token(),
    "TECHNE_GRAFANA_CLICKHOUSE_PASSWORD": lambda _: _token(),
    "GRAFANA_ADMIN_PASSWORD": lambda _: _token(),
    "TECHNE_CONSOLE_SECRET": lambda _: secrets.token_urlsafe(48),
}
"""Every secret docker-compose.yml interpolates, and how each one is drawn."""


def render_env(venues: list[str], public_host: str, registry_host: str, tls: str,
               console_host: str = "console.localhost") -> str:
    """The text of a new deploy/.env (JSON values single-quoted: literal for compose)."""
    lines = ["# Written by `techne deploy init`: the secrets of this deployment (mode 0600, never commit).",
             "# Back this file up with the stores: without TECHNE_SUBJECT_KEY and TECHNE_PSEUDONYM_KEYS",
             "# the bus cannot keep the keys (and pseudonyms) of the data it already holds; without",
             "# TECHNE_DATAKEY_MASTER_KEYS it cannot read the identifiers sealed on its topics.", ""]
    for name, draw in SECRETS.items():
        value = draw(venues)
        lines.append(f"{name}='{value}'" if value.startswith("{") else f"{name}={value}")
    lines += ["GRAFANA_ADMIN_USER=admin", "",
              "# The stack's public names and its certificate (see deploy/caddy/Caddyfile).",
              f"TECHNE_PUBLIC_HOST={public_host}", f"TECHNE_REGISTRY_HOST={registry_host}",
              f"TECHNE_CONSOLE_HOST={console_host}", f"TECHNE_TLS={tls}", ""]
    return "\n".join(lines)


def _create(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 and ``text``; FileExistsError if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def next_steps(env_file: Path, hook: Path, public_host: str, registry_host: str, tls: str,
               console_host: str = "console.localhost") -> str:
    """What the operator must still do after ``deploy init`` (printed, no secret in it)."""
    cert = ("put the chain and key in deploy/caddy/certs/ (cert.pem, key.pem)" if tls.startswith("/certs/")
            else "Caddy's local CA only: venues will not trust it; use an e-mail (ACME) or your certificate"
            if tls == "internal" else f"ACME with {tls}: port 443 reachable from the Internet")
    return "\n".join([
        f"wrote {env_file} (mode 0600) with fresh secrets; nothing was printed.",
        "Still to do:",
        f"  1. DNS: {public_host}, {registry_host} and {console_host} must resolve to this host",
        f"     (TLS: {cert}).",
        f"  2. Alerts: write the receiver's webhook URL into {hook} (one line; e-mail: see",
        "     deploy/alertmanager/alertmanager.yml).",
        "  3. Hand each venue its own webhook secret (TECHNE_VENUE_SECRETS in the .env) over a secure",
        "     channel; partners get theirs from `techne partner onboard P` once the stack runs.",
        "  4. Keep a copy of the .env in your secrets vault: it is needed to restore a backup.",
        "  5. Start: docker compose --env-file deploy/.env up -d --build",
        "  6. Onboard partners and venues' producers (deploy/README.md), e.g.",
        "     docker compose --env-file deploy/.env run --rm worker techne partner onboard PARTNER",
    ])


def register(app: typer.Typer) -> None:
    """Add ``deploy`` and ``backup`` to the ``techne`` command."""
    app.add_typer(deploy_app, name="deploy")
    app.add_typer(backup_app, name="backup")


@deploy_app.command("init")
def deploy_init(
    directory: Annotated[Path, typer.Option("--dir", help="The deploy folder next to docker-compose.yml.")] = Path(
        "deploy"),
    public_host: Annotated[str, typer.Option(help="Public name of the gateway (venues).")] = "localhost",
    registry_host: Annotated[str, typer.Option(help="Public name of the schema registry (partners).")] =
        "registry.localhost",
    console_host: Annotated[str, typer.Option(help="Public name of the venues' web console.")] =
        "console.localhost",
    tls: Annotated[str, typer.Option(help="E-mail (ACME), '/certs/cert.pem /certs/key.pem' or internal.")] =
        "internal",
) -> None:
    """Write deploy/.env with strong random secrets (refuses to overwrite it), then say what is left to do."""
    from core.venues import load_venues

    env_file = directory / ".env"
    hook = directory / "alertmanager" / "webhook-url"
    try:
        venues = sorted(load_venues(directory / "venues.yaml"))
        _create(env_file, render_env(venues, public_host, registry_host, tls, console_host))
    except FileExistsError:
        typer.echo(f"{env_file} exists: not overwritten (move it away first to draw new secrets; "
                   "changing TECHNE_SUBJECT_KEY or TECHNE_PSEUDONYM_KEYS breaks existing data)", err=True)
        raise typer.Exit(1) from None
    except TechneError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not hook.exists():
        _create(hook, "")
    typer.echo(next_steps(env_file, hook, public_host, registry_host, tls, console_host))


def _settings(data_dir: Path | None) -> Any:
    from core.settings import load_settings

    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir is not None else {}
    return load_settings(**overrides)  # a bad setting: one line naming it, never its value


@backup_app.command("create")
def backup_create(out: Annotated[Path, typer.Argument(help="New directory for the backup.")],
                  data_dir: DataDir = None) -> None:
    """Back up every partner store, every venue's own store and the audit store (embedded: stop the sinks first)."""
    from techne.backup import backup

    try:
        manifest = backup(_settings(data_dir), out)
    except (TechneError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for store in manifest["stores"]:
        for table in store["tables"]:
            typer.echo(f"{store['name']}.{table['name']}: {table['rows']} rows, checksum {table['checksum']}")
    typer.echo(f"backup written to {out}")


@backup_app.command("restore")
def backup_restore(source: Annotated[Path, typer.Argument(help="A directory written by `techne backup create`.")],
                   data_dir: DataDir = None) -> None:
    """Restore a backup into empty stores; exit 1 unless every table's rows and checksum match."""
    from techne.backup import restore

    try:
        restored = restore(_settings(data_dir), source)
    except (TechneError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for store, tables in restored.items():
        for table, state in tables.items():
            typer.echo(f"{store}.{table}: {state.rows} rows, checksum {state.checksum} (matches the backup)")


@backup_app.command("ledger")
def backup_ledger(out: Annotated[Path, typer.Argument(help="New file (.jsonl.gz) for the consent ledger.")]) -> None:
    """Back up the consent ledger (the worker's changelog topic in Kafka; TECHNE_BOOTSTRAP, TECHNE_WORKER_ID)."""
    import asyncio

    from techne.ledger_backup import export

    try:
        header = asyncio.run(export(_settings(None), out))
    except (TechneError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{header['topic']}: {header['records']} records over {header['partitions']} partitions, "
               f"sha256 {header['sha256']}; written to {out}")


@backup_app.command("restore-ledger")
def backup_restore_ledger(source: Annotated[Path, typer.Argument(help="A file written by `techne backup ledger`.")]
                          ) -> None:
    """Restore the consent ledger into an empty or missing changelog topic (worker stopped); exit 1 on mismatch."""
    import asyncio

    from techne.ledger_backup import restore as restore_ledger

    try:
        restored = asyncio.run(restore_ledger(_settings(None), source))
    except (TechneError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{restored['topic']}: {restored['records']} records restored, sha256 {restored['sha256']} "
               "(matches the backup)")
