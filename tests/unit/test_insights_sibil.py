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


# --- from the venue's own store (issue 16): the same scenario, through the venue store's projection ---


def _venue_store(tmp_path: Any, records: list[dict[str, Any]]) -> Any:
    """A real chDB venue store holding ``records`` exactly as the worker projects them for the
    venue (streams.steps.route.own_store) and its sink writes them (row_from_record)."""
    from sinks.chdb import ChdbStore
    from sinks.ddl import row_from_record, to_json_each_row
    from sinks.migrate import ensure_partner
    from sinks.tables import venue_tables
    from streams.steps.route import own_store

    tables = venue_tables(VENUE)
    store = ChdbStore(tmp_path / "venue")
    ensure_partner(store, tables)
    rows = []
    for record in records:
        kept = own_store(record, None, key_version=1, key=b"k" * 32)
        assert kept.outcome == "venue_store" and kept.record is not None
        rows.append(row_from_record(kept.record, [c for c in tables.orders.columns if c.name != "retain_until"]))
    names = [c.name for c in tables.orders.columns if c.name != "retain_until"]
    store.insert(tables.orders.qualified, names, to_json_each_row(rows), "JSONEachRow", "sibil-test")
    return store, tables.database


def test_declaration_from_the_venue_store_keeps_the_counts_and_says_what_it_cannot_know(tmp_path: Any) -> None:
    from insights.sibil import Declarant, declare_orders
    from insights.sibil_source import store_rows

    store, database = _venue_store(tmp_path, scenario())
    try:
        rows, coverage = store_rows(store, database, Quarter.parse("2026Q4"))
        assert all("subject_pseudonym" not in r for r in rows)
        who = Declarant("Les Gémeaux", "73282932000074", "Scène nationale")
        declaration = declare_orders(rows, VENUE, Quarter.parse("2026Q4"), who)
        lines = {x.performance_id: x for x in declaration.lines}
        p1, p2 = lines["P1"], lines["P2"]
        # the same ticket counts as from the raw events (refund of T2 recognised by its price,
        # the exchange moving O9's one ticket, cancellation and refund of O4 the same ticket)
        assert (p1.paid, p1.free, p2.paid, p2.free) == (5, 2, 3, 1)
        # receipts: booking fees are not in the store, so O1's 2.00 stay in (noted), none reported apart
        assert (p1.receipts_minor, p2.receipts_minor) == (5000 + 6000, 2500 + 4000 + 3500)
        assert declaration.totals()["fees_minor"] == 0 and declaration.notes["fees_unknown"] >= 1
        assert declaration.notes["partial_refund_kept"] == 1  # O5's compensation: the ticket stays
        assert p2.production == "Quatuor Ébène" and p1.hall == "Grande salle"
        text = to_csv(declaration)
        parsed = list(csv.DictReader(io.StringIO(text), delimiter=";"))
        assert [(r["siret_declarant"], r["nom_declarant"], r["type_lieu"], r["representation"], r["billets_total"])
                for r in parsed] == [("73282932000074", "Les Gémeaux", "Scène nationale", "P1", "7"),
                                     ("73282932000074", "Les Gémeaux", "Scène nationale", "P2", "4")]
        out = summary(declaration, "fr", coverage.warnings(Quarter.parse("2026Q4")))
        assert "Déclarant : Les Gémeaux, SIRET 73282932000074, type de lieu : Scène nationale" in out
        assert "8 billet(s) payant(s), 3 exonéré(s)" in out
        assert coverage.first_row is not None and not coverage.erasures
        # a past quarter comes out whole: Q3 (P0) is there too, long after any raw topic's 7 days
        q3 = declare_orders(store_rows(store, database, Quarter.parse("2026Q3"))[0], VENUE, Quarter.parse("2026Q3"))
        assert [(x.performance_id, x.paid) for x in q3.lines] == [("P0", 2)]
    finally:
        store.close()


def test_a_missing_siret_is_said_and_a_bad_one_refused(tmp_path: Any) -> None:
    from core.errors import ConfigError
    from core.venues import load_venues
    from insights.sibil import Declarant

    out = summary(sibil.Declaration(VENUE, Quarter.parse("2026Q4"), [], {}, Declarant("Les Gémeaux")), "fr")
    assert "SIRET manquant dans l’annuaire des lieux" in out and "type de lieu manquant" in out
    bad = tmp_path / "venues.yaml"
    bad.write_text("venues:\n  - id: gemeaux\n    name: G\n    siret: '73282932000075'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="Luhn"):
        load_venues(bad)


def test_orders_known_only_by_their_tickets_are_declared_from_the_venue_store(tmp_path: Any) -> None:
    """Billetweb and Weezevent send ``ticket.issued`` per attendee and no ``ticket.order_placed``:
    their tickets count from the venue store as from the raw events (they used to be dropped,
    noted as cancellations of an unknown order)."""
    from insights.sibil import declare_orders
    from insights.sibil_source import store_rows
    from tests.support.sibil import refunded, ticket

    records = [ticket("BW1", "A1", "P1", 2500), ticket("BW1", "A2", "P1", 2500),
               ticket("BW2", "A3", "P1", 0, invitation=True),
               ticket("BW3", "A4", "P2", 3000), refunded("BW3", 3000)]
    raw = declare([strip(e) for e in records], VENUE, Quarter.parse("2026Q4"))
    store, database = _venue_store(tmp_path, records)
    try:
        rows, _ = store_rows(store, database, Quarter.parse("2026Q4"))
        declaration = declare_orders(rows, VENUE, Quarter.parse("2026Q4"))
    finally:
        store.close()
    counts = {x.performance_id: (x.paid, x.free, x.receipts_minor) for x in declaration.lines}
    assert counts["P1"] == (2, 1, 5000)
    assert counts.get("P2", (0, 0, 0)) == (0, 0, 0)  # refunded whole
    assert {x.performance_id: (x.paid, x.free, x.receipts_minor) for x in raw.lines}["P1"] == counts["P1"]
    assert "cancellation_of_unknown_order" not in declaration.notes
