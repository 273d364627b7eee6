"""The venue directory (``deploy/venues.yaml``), validated at load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import ConfigError

VenueId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]


def siret_problem(value: str) -> str | None:
    """Why ``value`` is not a SIRET (14 digits, Luhn checksum), or ``None``."""
    digits = value.replace(" ", "")
    if len(digits) != 14 or not digits.isdigit():
        return "a SIRET is 14 digits"
    total = sum(sum(divmod(int(d) * (2 if i % 2 else 1), 10)) for i, d in enumerate(reversed(digits)))
    return None if total % 10 == 0 else "SIRET checksum (Luhn) does not match"


class Venue(BaseModel):
    """One venue. ``siret`` and ``place_type`` (type de lieu, e.g. ``Scène nationale``) identify
    the declarant of the SIBIL ticketing declaration (:mod:`insights.sibil`); both optional, the
    declaration says when they are missing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: VenueId
    name: str
    city: str = ""
    siret: str = ""
    place_type: str = ""

    @field_validator("siret")
    @classmethod
    def _siret(cls, value: str) -> str:
        value = value.replace(" ", "")
        if value and (problem := siret_problem(value)):
            raise ValueError(problem)
        return value


class _VenueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    venues: list[Venue]


def load_venues(path: Path) -> dict[str, Venue]:
    """Read the venue file; raise :class:`ConfigError` naming the file and field if invalid."""
    try:
        parsed = _VenueFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except ValueError as exc:  # pydantic's ValidationError; PyYAML's date 2028-02-30; a file not in UTF-8
        raise ConfigError(f"{path}: {exc}") from exc
    ids = [v.id for v in parsed.venues]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{path}: duplicate venue ids")
    return {v.id: v for v in parsed.venues}


class UnknownVenue(ConfigError):
    """A venue id that is not in the venue directory."""


def require_venue(path: Path, venue_id: str) -> None:
    """Raise :class:`UnknownVenue` (one line, French then English, listing the known ids) unless
    ``venue_id`` is in the venue file ``path``."""
    venues = load_venues(path)
    if venue_id not in venues:
        known = ", ".join(sorted(venues)) or "—"
        raise UnknownVenue(f"lieu inconnu : {venue_id!r} (lieux connus : {known}) / "
                           f"unknown venue {venue_id!r} (known: {known})")
