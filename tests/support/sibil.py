"""Shared by several test modules (tests never import each other)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.codec import CATALOGUE
from schemas.models import INCOMING, to_record

VENUE = "gemeaux"


CUSTOMER = {"email": "claire.martin@exemple.fr", "postal_code": "92330"}


PERFS = {  # performance id -> (production, discipline, start UTC)
    "P0": ("Rentrée", "theatre", "2026-09-30T19:00:00Z"),  # 21:00 Paris, Q3
    "P1": ("Le Misanthrope", "theatre", "2026-10-10T18:00:00Z"),
    "P2": ("Quatuor Ébène", "musique", "2026-12-31T22:30:00Z"),  # 23:30 Paris on 31 December: Q4
    "P3": ("Réveillon", "musique", "2026-12-31T23:30:00Z"),  # 00:30 Paris on 1 January: next quarter
}


BODIES: list[dict[str, Any]] = []
"""Every venue JSON body :func:`event` validated, in order (to send the same scenario through the
real gateway: ``BODIES.clear(); scenario(); list(BODIES)``)."""


def event(kind: str, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """The Avro record the gateway would write for this venue JSON (validated like a webhook)."""
    body = {"type": kind, "event_id": event_id or str(uuid.uuid4()), "occurred_at": "2026-09-01T10:00:00Z",
            "source_system": "billetterie", "customer": CUSTOMER, **fields}
    BODIES.append(body)
    parsed = INCOMING.validate_python(body)
    name, record = to_record(parsed, venue_id=VENUE, received_at=datetime.now(UTC), fallback_id=uuid.uuid4())
    CATALOGUE.decode(CATALOGUE.encode(name, record))  # really encodable
    return record


def order(order_id: str, perf: str, quantity: int, amount: int, *, invitation: bool = False, fees: int = 0,
          event_id: str | None = None) -> dict[str, Any]:
    production, discipline, at = PERFS[perf]
    return event("ticket.order_placed", event_id, order_id=order_id, production=production, performance_id=perf,
                 performance_at=at, discipline=discipline, tariff="invitation" if invitation else "plein",
                 channel="web", quantity=quantity, amount_minor=amount, currency="EUR", is_invitation=invitation,
                 booking_fee_minor=fees, hall="Grande salle")


def ticket(order_id: str, ticket_id: str, perf: str, price: int, *, invitation: bool = False) -> dict[str, Any]:
    production, discipline, at = PERFS[perf]
    return event("ticket.issued", order_id=order_id, ticket_id=ticket_id, barcode="3760" + ticket_id,
                 production=production, performance_id=perf, performance_at=at, discipline=discipline,
                 tariff="invitation" if invitation else "plein", price_minor=price, currency="EUR",
                 is_invitation=invitation)


def cancelled(order_id: str, quantity: int, ticket_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    return event("ticket.order_cancelled", order_id=order_id, ticket_ids=list(ticket_ids), quantity=quantity,
                 reason="customer_request")


def refunded(order_id: str, amount: int, ticket_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    return event("ticket.order_refunded", order_id=order_id, ticket_ids=list(ticket_ids), amount_minor=amount,
                 currency="EUR", refund_method="original_payment", reason="customer_request")


def scenario() -> list[dict[str, Any]]:
    """Orders, tickets, invitations, cancellations, refunds and an exchange; expected Q4 totals:
    P1 5 paid + 2 free, 108.00 EUR; P2 3 paid + 1 free, 100.00 EUR (see the test below)."""
    o1 = order("O1", "P1", 2, 5000, fees=200, event_id="0b7f3a63-4d8b-4c59-9f3c-6f1b3f2f0a01")
    return [
        o1, o1,  # a re-delivered webhook: same event id, counted once
        order("O2", "P1", 2, 0, invitation=True),
        order("O3", "P1", 3, 6000), cancelled("O3", 3), refunded("O3", 6000),
        order("O4", "P1", 4, 8000), cancelled("O4", 1), refunded("O4", 2000),
        order("O5", "P2", 1, 3000), refunded("O5", 500),  # a partial refund (compensation): the ticket stays
        order("O6", "P3", 2, 4000),  # next quarter
        order("O7", "P0", 2, 4000),  # previous quarter
        # ticket level: a mixed paid/free order, then one paid ticket refunded
        order("O8", "P2", 3, 8000),
        ticket("O8", "T1", "P2", 4000), ticket("O8", "T2", "P2", 4000), ticket("O8", "T3", "P2", 0, invitation=True),
        refunded("O8", 4000, ("T2",)),
        # a ticket exchanged from P1 to P2, paying 5 EUR more
        order("O9", "P1", 1, 3000), ticket("O9", "T4", "P1", 3000),
        event("ticket.exchanged", order_id="O9", old_ticket_id="T4", new_ticket_id="T5", old_performance_id="P1",
              new_performance_id="P2", new_performance_at=PERFS["P2"][2], price_difference_minor=500, fee_minor=0,
              currency="EUR"),
        refunded("NOPE", 1000),  # an order the bus never saw
    ]
