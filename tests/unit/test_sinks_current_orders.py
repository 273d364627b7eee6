"""The view ``ticket_orders_current`` (sinks/tables.py) on a real embedded store: each order in
its latest state, a refunded or cancelled order no longer counting, also when its refund carries
the same instant as the order (CSV exports with dates only, dd/mm/yyyy: both at midnight)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from schemas.agreements import Agreement
from sinks.chdb import ChdbStore
from sinks.migrate import ensure_partner
from sinks.tables import partner_tables

LOW, HIGH = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"


def _agreement() -> Agreement:
    return Agreement.model_validate({
        "id": "dsa-cur", "provider_venues": ["v1"], "partner": "cur", "purposes": ["cross_venue_analytics"],
        "event_types": ["ticket.order_placed", "ticket.order_refunded", "ticket.order_cancelled"],
        "allowed_fields": ["quantity", "amount_minor"], "retention_days": 3650,
        "valid_from": date(2020, 1, 1), "valid_until": date(2030, 1, 1)})


def _insert(store: ChdbStore, event_id: str, order: str, status: str, at: str) -> None:
    store.command(
        "INSERT INTO cur.ticket_orders (event_id, event_type, occurred_at, received_at, venue_id, agreement_id, "
        "purpose, subject_pseudonym, pseudonym_key_version, status, order_ref, quantity, amount_minor) VALUES "
        "({e:UUID}, {t:String}, {at:DateTime64(6, 'UTC')}, {at:DateTime64(6, 'UTC')}, 'v1', 'dsa-cur', "
        "'cross_venue_analytics', {p:String}, 1, {s:String}, {o:String}, 2, 5000)",
        {"e": event_id, "t": f"ticket.order_{status}", "at": at, "p": f"person-{order}", "s": status, "o": order})


@pytest.mark.parametrize("terminal", ["refunded", "cancelled"])
def test_an_order_ended_at_the_same_instant_no_longer_counts(tmp_path: Path, terminal: str) -> None:
    store = ChdbStore(tmp_path / "cur")
    try:
        ensure_partner(store, partner_tables("cur", [_agreement()]))
        midnight = "2026-10-03 00:00:00"
        _insert(store, LOW, "o1", "placed", midnight)  # whichever event id sorts first,
        _insert(store, HIGH, "o1", terminal, midnight)
        _insert(store, HIGH.replace("f", "e"), "o2", "placed", midnight)  # the ending wins the tie
        _insert(store, LOW.replace("1", "2"), "o2", terminal, midnight)
        _insert(store, LOW.replace("1", "3"), "o3", "placed", midnight)  # a live order still counts
        rows = store.query("SELECT order_key, status, counts, quantity, amount_minor "
                           "FROM cur.ticket_orders_current ORDER BY order_key")
        assert [tuple(r) for r in rows] == [("o1", terminal, 0, 2, 5000), ("o2", terminal, 0, 2, 5000),
                                           ("o3", "placed", 1, 2, 5000)]
    finally:
        store.close()
