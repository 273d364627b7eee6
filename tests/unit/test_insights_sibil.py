"""SIBIL declaration from synthetic ticketing events: orders, tickets, invitations, cancellations,
refunds, exchanges, re-deliveries, and the quarter's Europe/Paris boundaries."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

from insights import sibil
from insights.sibil import Quarter, declare, strip, summary, to_csv
from tests.support.sibil import VENUE, order, scenario


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return scenario()




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
