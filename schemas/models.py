"""Pydantic models of what venues send (JSON), kept in lockstep with the Avro schemas.

A venue posts JSON; :data:`INCOMING` validates it (the ``type`` field selects the model) and
:meth:`to_record` turns a valid event into the Avro record of its schema, adding what the bus
owns: ``event_id`` (kept if the venue sent one), ``received_at``, ``venue_id``.
Validation errors are pydantic ``ValidationError``s whose ``loc`` gives the failing field path.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

TICKET_ORDER = "org.techne.ticketing.TicketOrderPlaced"
CONSENT = "org.techne.consent.ConsentChanged"
SHARED_TICKET_ORDER = "org.techne.partner.SharedTicketOrder"
ERASURE_COMMAND = "org.techne.partner.ErasureCommand"


class Purpose(StrEnum):
    """The closed list of processing purposes a consent or an agreement may name."""

    AUDIENCE_MEASUREMENT = "audience_measurement"  # consent-exempt, venue-internal only
    CROSS_VENUE_ANALYTICS = "cross_venue_analytics"
    MARKETING = "marketing"
    RESEARCH = "research"


class Discipline(StrEnum):
    THEATRE = "theatre"
    DANSE = "danse"
    OPERA = "opera"
    MUSIQUE = "musique"
    CIRQUE = "cirque"
    JEUNE_PUBLIC = "jeune_public"
    AUTRE = "autre"


class Tariff(StrEnum):
    PLEIN = "plein"
    REDUIT = "reduit"
    JEUNE = "jeune"
    ABONNE = "abonne"
    INVITATION = "invitation"
    AUTRE = "autre"


class Channel(StrEnum):
    BOX_OFFICE = "box_office"
    WEB = "web"
    RESELLER = "reseller"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Customer(_Strict):
    """The person an event is about, as the venue knows them. At least one identifier."""

    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    customer_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    postal_code: Annotated[str, Field(pattern=r"^[0-9A-Za-z \-]{2,10}$")] | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return v.lower() if v else v

    def model_post_init(self, __context: Any) -> None:
        if not (self.email or self.customer_id):
            raise ValueError("customer needs an email or a customer_id")


class _EventIn(_Strict):
    event_id: uuid.UUID | None = None
    occurred_at: AwareDatetime
    source_system: Annotated[str, Field(min_length=1, max_length=64)] = "unknown"
    customer: Customer


class TicketOrderIn(_EventIn):
    """``ticket.order_placed``: one order for one performance."""

    type: Literal["ticket.order_placed"]
    order_id: Annotated[str, Field(min_length=1, max_length=128)]
    production: Annotated[str, Field(min_length=1, max_length=256)]
    performance_id: Annotated[str, Field(min_length=1, max_length=128)]
    performance_at: AwareDatetime
    discipline: Discipline
    tariff: Tariff
    channel: Channel
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    amount_minor: Annotated[int, Field(ge=0)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"


class ConsentIn(_EventIn):
    """``consent.granted`` / ``consent.withdrawn`` for one purpose."""

    type: Literal["consent.granted", "consent.withdrawn"]
    purpose: Purpose
    recipients: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")]] = []
    recipient_list_version: Annotated[str, Field(max_length=64)] = ""
    proof_ref: Annotated[str, Field(max_length=512)] | None = None


IncomingEvent = Annotated[TicketOrderIn | ConsentIn, Field(discriminator="type")]
INCOMING: TypeAdapter[TicketOrderIn | ConsentIn] = TypeAdapter(IncomingEvent)



def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC)


def to_record(
    event: TicketOrderIn | ConsentIn, *, venue_id: str, received_at: datetime, fallback_id: uuid.UUID
) -> tuple[str, dict[str, Any]]:
    """Return ``(schema name, Avro record)`` for a validated incoming event.

    ``fallback_id`` is used when the venue sent no ``event_id``; callers derive it from the
    webhook id so that a re-delivered webhook yields the same ``event_id``.
    """
    common: dict[str, Any] = {
        "event_id": str(event.event_id or fallback_id),
        "event_type": event.type,
        "schema_version": 1,
        "occurred_at": _utc(event.occurred_at),
        "received_at": _utc(received_at),
        "venue_id": venue_id,
        "source_system": event.source_system,
        "subject": event.customer.model_dump(),
    }
    if isinstance(event, TicketOrderIn):
        body = event.model_dump(
            include={"order_id", "production", "performance_id", "discipline", "tariff",
                     "channel", "quantity", "amount_minor", "currency"},
            mode="json",
        )
        return TICKET_ORDER, {**common, **body, "performance_at": _utc(event.performance_at)}
    return CONSENT, {
        **common,
        "purpose": event.purpose.value,
        "recipients": list(event.recipients),
        "recipient_list_version": event.recipient_list_version,
        "proof_ref": event.proof_ref,
    }
