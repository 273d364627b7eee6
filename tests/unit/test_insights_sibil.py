"""SIBIL declaration from synthetic ticketing events: orders, tickets, invitations, cancellations,
refunds, exchanges, re-deliveries, and the quarter's Europe/Paris boundaries."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from insights import sibil
from insights.sibil import Quarter, declare, strip, summary, to_csv
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


def event(kind: str, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """The Avro record the gateway would write for this venue JSON (validated like a webhook)."""
    body = {"type": kind, "event_id": event_id or str(uuid.uuid4()), "occurred_at": "2026-09-01T10:00:00Z",
            "source_system": "billetterie", "customer": CUSTOMER, **fields}
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


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return scenario()


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


def test_declaration_totals_per_performance(events: list[dict[str, Any]]) -> None:
    declaration = declare([strip(e) for e in events], VENUE, Quarter.parse("2026Q4"))
    lines = {x.performance_id: x for x in declaration.lines}
    assert sorted(lines) == ["P1", "P2"]
    p1, p2 = lines["P1"], lines["P2"]
    assert (p1.paid, p1.free, p1.receipts_minor, p1.fees_minor) == (2 + 3, 2, 4800 + 0 + 6000, 200)
    assert (p2.paid, p2.free, p2.receipts_minor) == (1 + 1 + 1, 1, 2500 + 4000 + 3500)
    assert p1.production == "Le Misanthrope" and p1.domain == "Théâtre" and p1.hall == "Grande salle"
    assert p2.production == "Quatuor Ébène"  # the exchanged ticket's new performance keeps its description
    assert declaration.totals() == {"performances": 2, "paid": 8, "free": 3, "receipts_minor": 20800,
                                    "fees_minor": 200}
    assert declaration.notes["refund_of_unknown_order"] == 1


def test_quarter_boundaries_are_paris_dates(events: list[dict[str, Any]]) -> None:
    q1 = declare([strip(e) for e in events], VENUE, Quarter.parse("2027Q1"))
    assert [(x.performance_id, x.paid) for x in q1.lines] == [("P3", 2)]
    q3 = declare([strip(e) for e in events], VENUE, Quarter.parse("2026-q3"))
    assert [(x.performance_id, x.paid, x.receipts_minor) for x in q3.lines] == [("P0", 2, 4000)]


def test_other_venues_and_non_ticketing_events_are_ignored(events: list[dict[str, Any]]) -> None:
    other = {**strip(order("X1", "P1", 10, 10000)), "venue_id": "chaillot"}
    consent = {"event_id": str(uuid.uuid4()), "event_type": "consent.granted", "venue_id": VENUE}
    declaration = declare([*(strip(e) for e in events), other, consent], VENUE, Quarter.parse("2026Q4"))
    assert declaration.totals()["paid"] == 8


def test_the_declaration_never_holds_the_subject(events: list[dict[str, Any]]) -> None:
    assert all("subject" not in strip(e) for e in events)
    assert "claire" not in repr([strip(e) for e in events]).lower()


def test_csv_and_summary(events: list[dict[str, Any]]) -> None:
    declaration = declare([strip(e) for e in events], VENUE, Quarter.parse("2026Q4"))
    rows = list(csv.DictReader(io.StringIO(to_csv(declaration)), delimiter=";"))
    assert [r["representation"] for r in rows] == ["P1", "P2"]
    assert rows[1]["date"] == "2026-12-31" and rows[1]["heure"] == "23:30"  # local time
    assert (rows[0]["billets_payants"], rows[0]["billets_exoneres"], rows[0]["recette_ttc"]) == ("5", "2", "108.00")
    assert rows[0]["prix_moyen_ttc"] == "21.60" and rows[0]["frais_de_location"] == "2.00"
    text = summary(declaration, "fr", ["un avertissement"])
    assert "8 billet(s) payant(s), 3 exonéré(s), recette TTC 208.00" in text
    assert "! un avertissement" in text and "remboursements d'une commande inconnue" in text
    assert "8 paid ticket(s), 3 free" in summary(declaration, "en")


def test_quarter_parsing() -> None:
    assert str(Quarter.parse("2026q4")) == "2026Q4"
    assert Quarter.parse("2026Q4").next_first_day.isoformat() == "2027-01-01"
    with pytest.raises(ValueError, match="YYYYQn"):
        Quarter.parse("2026-T4")
    assert set(sibil.DOMAINS) >= {"theatre", "danse", "opera"}
