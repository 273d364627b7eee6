"""``techne consent link``: a person's signed link to a venue's preference centre (for a
newsletter footer, a reply to a request, a test), printed once; nothing is recorded."""

from __future__ import annotations

from typing import Annotated

import typer


def register(consent_app: typer.Typer) -> None:
    @consent_app.command("link")
    def consent_link(venue: Annotated[str, typer.Option(help="Venue id whose preference centre it opens.")],
                     email: Annotated[str, typer.Option(help="The person's e-mail address.")],
                     base_url: Annotated[str, typer.Option(help="The gateway as people reach it.")] = (
                         "http://127.0.0.1:8080")) -> None:
        """Print the person's link (valid ``link_ttl_days`` of deploy/consent-sources.yaml, 30 by default)."""
        from core.errors import ConfigError
        from core.settings import Settings, load_settings
        from core.venues import load_venues
        from producers.gateway.preferences import preference_link

        settings: Settings = load_settings()
        if venue not in load_venues(settings.venues_file):
            raise ConfigError(f"lieu inconnu « {venue} » / unknown venue '{venue}'")
        typer.echo(preference_link(settings.require_subject_key(), venue, email, base_url))
