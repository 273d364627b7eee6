"""Pydantic models of what venues send (JSON), kept in lockstep with the Avro schemas.

A venue posts JSON; :data:`INCOMING` validates it (the ``type`` field selects the model) and
:func:`to_record` turns a valid event into the Avro record of the latest version of its schema,
adding what the bus owns: ``event_id`` (kept if the venue sent one), ``schema_version``,
``received_at``, ``venue_id``. Validation errors are pydantic ``ValidationError``s whose ``loc``
gives the failing field path.

The models themselves are generated from the ``.avsc`` files (:mod:`schemas.generated.incoming`);
this module only narrows two of them (consent purposes and recipients, the ticketing enums) and
names the schemas the rest of the bus refers to. Ad spend has no subject: it is imported (CSV,
platform APIs), not posted, so it is not part of :data:`INCOMING`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from schemas.codec import CATALOGUE
from schemas.customer import Customer, OptionalCustomer, VisitorCustomer
from schemas.generated import incoming as gen
from schemas.generated.incoming import EventIn

__all__ = ["CONSENT", "EMAIL_CLICK", "ERASURE_COMMAND", "ERASURE_REQUEST", "EVENT_SCHEMAS", "INCOMING",
           "SHARED_EMAIL_CLICK", "SHARED_TICKET_ORDER", "TICKET_ORDER", "Channel", "ConsentIn", "Customer",
           "Discipline", "EventIn", "OptionalCustomer", "Purpose", "Tariff", "TicketOrderIn", "VisitorCustomer",
           "to_record"]

TICKET_ORDER = "org.techne.ticketing.TicketOrderPlaced"
CONSENT = "org.techne.consent.ConsentChanged"
ERASURE_REQUEST = "org.techne.consent.ErasureRequested"
SHARED_TICKET_ORDER = "org.techne.partner.SharedTicketOrder"
EMAIL_CLICK = "org.techne.campaign.EmailClicked"
SHARED_EMAIL_CLICK = "org.techne.partner.SharedEmailClick"
ERASURE_COMMAND = "org.techne.partner.ErasureCommand"
AD_SPEND = "org.techne.ads.AdSpendReported"

EVENT_SCHEMAS: dict[str, str] = {
    event_type: name for name in CATALOGUE.names()
    for event_type in CATALOGUE.entry(name).raw.get("techne.event_types", [])
}
"""Event type (``ticket.order_placed``) -> full name of the schema that carries it."""


class Purpose(StrEnum):
    """The closed list of processing purposes a consent or an agreement may name."""

    AUDIENCE_MEASUREMENT = "audience_measurement"  # consent-exempt, venue-internal only
    CROSS_VENUE_ANALYTICS = "cross_venue_analytics"
    MARKETING = "marketing"
    RESEARCH = "research"


class Discipline(StrEnum):
    """Artistic domain (symbols of the Avro enum ``org.techne.ticketing.Discipline``)."""

    THEATRE = "theatre"
    DANSE = "danse"
    OPERA = "opera"
    MUSIQUE = "musique"
    CIRQUE = "cirque"
    JEUNE_PUBLIC = "jeune_public"
    AUTRE = "autre"
    MUSIQUES_ACTUELLES = "musiques_actuelles"
    ARTS_DE_LA_RUE = "arts_de_la_rue"
    MARIONNETTE = "marionnette"
    HUMOUR = "humour"
    PLURIDISCIPLINAIRE = "pluridisciplinaire"


class Tariff(StrEnum):
    """Tariff type (symbols of the Avro enum ``org.techne.ticketing.Tariff``)."""

    PLEIN = "plein"
    REDUIT = "reduit"
    JEUNE = "jeune"
    ABONNE = "abonne"
    INVITATION = "invitation"
    AUTRE = "autre"
    ETUDIANT = "etudiant"
    SCOLAIRE = "scolaire"
    SENIOR = "senior"
    SOLIDAIRE = "solidaire"
    GROUPE = "groupe"
    ADHERENT = "adherent"
    PASS_CULTURE = "pass_culture"  # noqa: S105 (a tariff, not a password)
    PROFESSIONNEL = "professionnel"
    DERNIERE_MINUTE = "derniere_minute"


class Channel(StrEnum):
    """Sales channel (symbols of the Avro enum ``org.techne.ticketing.Channel``)."""

    BOX_OFFICE = "box_office"
    WEB = "web"
    RESELLER = "reseller"
    PHONE = "phone"
    MOBILE_APP = "mobile_app"
    GROUP_SALES = "group_sales"
    OTHER = "other"


class TicketOrderIn(gen.TicketOrderPlacedIn):
    """``ticket.order_placed``: one order for one performance (enum fields are the ``Literal``
    aliases of :mod:`schemas.generated.records`; :class:`Discipline` & co. name the same symbols)."""


PartnerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")]


class ConsentIn(gen.ConsentChangedIn):
    """``consent.granted`` / ``consent.withdrawn`` / ``consent.expired`` for one purpose."""

    purpose: Purpose
    recipients: list[PartnerId] = Field(default_factory=list)


_OVERRIDES: dict[str, type[EventIn]] = {TICKET_ORDER: TicketOrderIn, CONSENT: ConsentIn}
INCOMING_MODELS: dict[str, type[EventIn]] = {name: _OVERRIDES.get(name, model) for name, model in gen.MODELS.items()}
"""Schema full name -> the model validating what venues post for it (ad spend included: a venue
posts its daily spend per platform and campaign, which describes no person)."""

_UNION: Any = Union.__getitem__(tuple(INCOMING_MODELS.values()))  # a union built from the catalogue
INCOMING: TypeAdapter[EventIn] = TypeAdapter(Annotated[_UNION, Field(discriminator="type")])

_VENUE_OWNED = {"type", "event_id", "occurred_at", "source_system", "customer"}


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def to_record(event: EventIn, *, venue_id: str, received_at: datetime,
              fallback_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """Return ``(schema name, Avro record)`` for a validated incoming event.

    ``fallback_id`` is used when the venue sent no ``event_id``; callers derive it from the
    webhook id so that a re-delivered webhook yields the same ``event_id``.
    """
    name = EVENT_SCHEMAS[event.type]
    record: dict[str, Any] = {
        "event_id": str(event.event_id or fallback_id),
        "event_type": event.type,
        "schema_version": CATALOGUE.entry(name).version,
        "occurred_at": _utc(event.occurred_at),
        "received_at": _utc(received_at),
        "venue_id": venue_id,
        "source_system": event.source_system,
    }
    customer = getattr(event, "customer", None)
    if customer is not None:
        record["subject"] = customer.model_dump()
    for key, value in event:
        if key not in _VENUE_OWNED:
            record[key] = [str(v) for v in value] if key == "recipients" else _utc(value)
    return name, record
