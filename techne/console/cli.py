"""``techne console``: run the console, manage its users (registered by one line in :mod:`techne.cli`).

``techne console [--host H --port P]`` serves it; ``techne console user add NAME --venue V``
creates a venue's user (``--operator`` for one who sees every venue). There is never a default
password: the password is typed twice (hidden), read from stdin (``--password-stdin``), or the
user gets a one-time sign-in link instead (``--link``, valid one hour, usable once).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import ConfigError

console_app = typer.Typer(help="The venue's web console (French first): serve it, manage its users.")
user_app = typer.Typer(help="Console users: one venue each, or operators who see every venue.", no_args_is_help=True)
console_app.add_typer(user_app, name="user")
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Local state directory (default ./.techne).")]


def _settings(data_dir: Path | None = None, bootstrap: str | None = None, *, producer: bool = False) -> Any:
    """The bus settings; ``producer``: the console serving imports and preference links, which
    need the subject key (``GatewaySettings``: refused at start without it, not a 500 later)."""
    from core.settings import GatewaySettings, Settings, load_settings

    overrides: dict[str, Any] = {"data_dir": data_dir, "bootstrap": bootstrap}
    kind = GatewaySettings if producer else Settings
    return load_settings(kind, **{k: v for k, v in overrides.items() if v is not None})  # one line, never a value


def _users(data_dir: Path | None) -> Any:
    from techne.console.users import UserStore

    return UserStore(_settings(data_dir).data_dir / "console" / "console.sqlite")


def _console_settings() -> Any:
    """``TECHNE_CONSOLE_*``, validated: a bad one is one line naming it (never its value)."""
    from core.settings import load_settings
    from techne.console.security import ConsoleSettings

    return load_settings(ConsoleSettings)


def _base_url(url: str | None, port: int = 8090) -> str:
    return (url or _console_settings().public_url or f"http://127.0.0.1:{port}").rstrip("/")


@console_app.callback(invoke_without_command=True)
def serve(ctx: typer.Context, host: str = "127.0.0.1", port: int = 8090,
          bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap (imports, dead letters).")] = None,
          data_dir: DataDir = None) -> None:
    """Serve the console (HTTP; put it behind the TLS proxy and set TECHNE_CONSOLE_SECURE_COOKIES=true)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from techne.console.app import create_app

    console = _console_settings()
    app = create_app(_settings(data_dir, bootstrap, producer=True), console)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=True,
                forwarded_allow_ips=console.trusted_proxies)


@user_app.command("add")
def user_add(username: Annotated[str, typer.Argument(help="Login name (3-64 of a-z 0-9 . _ @ -).")],
             venue: Annotated[str | None, typer.Option(help="The venue this user belongs to.")] = None,
             operator: Annotated[bool, typer.Option("--operator", help="Sees every venue (the bus's operators).")]
             = False,
             link: Annotated[bool, typer.Option("--link", help="No password: print a one-time sign-in link.")]
             = False,
             password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]
             = False,
             url: Annotated[str | None, typer.Option(help="Console address for the link.")] = None,
             data_dir: DataDir = None) -> None:
    """Create a console user; the password is never a default (typed twice, stdin, or a one-time link)."""
    from core.venues import load_venues

    settings = _settings(data_dir)
    if operator == (venue is not None):
        raise ConfigError("give exactly one of --venue V or --operator")
    known = set(load_venues(settings.venues_file))
    if venue is not None and venue not in known:  # before asking for a password, not after
        raise ConfigError(f"unknown venue {venue!r} (known: {', '.join(sorted(known))})")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not link:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    users = _users(data_dir)
    try:
        user = users.add(username, role="operator" if operator else "venue", venue=venue, password=password,
                         known_venues=known)
        typer.echo(f"user {user.username} added ({'operator' if operator else f'venue {venue}'})")
        if link:
            typer.echo(f"one-time sign-in link (1 h): {_base_url(url)}/connexion/lien/{users.issue_link(username)}")
    finally:
        users.close()


@user_app.command("link")
def user_link(username: str, url: Annotated[str | None, typer.Option(help="Console address.")] = None,
              data_dir: DataDir = None) -> None:
    """Print a new one-time sign-in link for an existing user (valid one hour, usable once)."""
    users = _users(data_dir)
    try:
        typer.echo(f"{_base_url(url)}/connexion/lien/{users.issue_link(username)}")
    finally:
        users.close()


@user_app.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """Every console user, with role and venue (never a password or hash)."""
    users = _users(data_dir)
    try:
        for user in users.list():
            typer.echo(f"{user.username}\t{user.role}\t{user.venue or '*'}")
    finally:
        users.close()


@user_app.command("remove")
def user_remove(username: str, data_dir: DataDir = None) -> None:
    """Remove a user (their open sessions stop working at the next page)."""
    users = _users(data_dir)
    try:
        if not users.remove(username):
            raise ConfigError(f"no user {username!r}")
        typer.echo(f"user {username} removed")
    finally:
        users.close()
