"""Names an operator types on the command line, checked before anything runs.

Each check returns quietly for a known name and raises :class:`Unknown` (a ``ConfigError``:
the CLI exits 2) with a one-line reason that lists the known names (venues: ``UnknownVenue``). Reasons that a venue's
staff may read (venues) come in French, then English, on the same line; the others in English.

- :func:`venue`: an id of the venue directory (``settings.venues_file``);
- :func:`partner`: a partner named by at least one data-sharing agreement (or ``venue:<venue>``,
  the venue's own store);
- :func:`dlq_stage`: a stage that has a dead-letter topic (``dlq.<stage>``).

Missing stores are refused where they are opened (``sinks.runner``: a read never creates one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.venues import load_venues, require_venue

if TYPE_CHECKING:
    from core.settings import Settings


class Unknown(ConfigError):
    """A partner or stage name that the bus does not know (venues: ``UnknownVenue``)."""


def _listed(names: list[str]) -> str:
    return ", ".join(sorted(names)) or "—"


def venue(settings: Settings, venue_id: str) -> None:
    require_venue(settings.venues_file, venue_id)


def partner(settings: Settings, partner_id: str) -> None:
    """A partner of the agreements, or ``venue:<venue>`` (a venue's own store) for a known venue."""
    from schemas.agreements import load_agreements, partners

    if partner_id.startswith("venue:"):
        venue(settings, partner_id.removeprefix("venue:"))
        return
    known = partners(load_agreements(settings.agreements_dir, set(load_venues(settings.venues_file))))
    if partner_id not in known:
        raise Unknown(f"unknown partner {partner_id!r}: no data-sharing agreement names it "
                      f"(partners of the agreements: {_listed(known)})")


def dlq_stage(stage: str) -> None:
    from core.topics import DLQ_STAGES

    if stage not in DLQ_STAGES:
        raise Unknown(f"unknown stage {stage!r}: dead letters exist for {_listed(list(DLQ_STAGES))}")
