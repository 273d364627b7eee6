"""End to end on the real broker and chDB: signed webhooks -> gateway -> Kafka -> Faust worker
(consent ledger, consent filter, pseudonymization, routing) -> partner topics -> sinks -> chDB.

The expected outcome of every event is written out by hand below (the oracle does not reuse
the routing code), then compared with what each partner's table really holds.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from sinks.runner import partner_rows
from techne.accounting import collect_audit, wait_sinks_caught_up
from tests.conftest import Bus
from tests.support.events import PEOPLE, consent_payload, order_payload, send

pytestmark = pytest.mark.integration
OBS, DANSE = "observatoire", "reseau-danse"

# (person, venue, kind, purpose, recipients, days ago)
CONSENTS = [
    ("alice", "opera-lyon", "granted", "cross_venue_analytics", [OBS], 30),
    ("alice", "chaillot", "granted", "cross_venue_analytics", [OBS], 20),
    ("bob", "opera-lyon", "granted", "cross_venue_analytics", [OBS], 40),
    ("bob", "opera-lyon", "withdrawn", "cross_venue_analytics", [], 10),   # refused later
    ("david", "chaillot", "granted", "marketing", [DANSE], 15),
    ("david", "gemeaux", "granted", "cross_venue_analytics", [OBS], 15),
    ("emma", "opera-lyon", "granted", "cross_venue_analytics", ["un-autre-partenaire"], 5),  # OBS not named
    # chloe never answered: default deny
]
# (person, venue) -> partners that must receive that person's orders there
EXPECTED = {
    ("alice", "opera-lyon"): {OBS}, ("alice", "chaillot"): {OBS}, ("bob", "opera-lyon"): set(),
    ("chloe", "gemeaux"): set(), ("chloe", "chaillot"): set(), ("david", "chaillot"): {DANSE},
    ("david", "gemeaux"): {OBS}, ("emma", "opera-lyon"): set(),
}
ORDERS_PER_PAIR = 3








def test_consented_events_reach_partners_once_pseudonymized(worker: Bus) -> None:
    bus = worker
    for partner in bus.partners:
        bus.stack.start_sink(partner)

    for person, venue, kind, purpose, recipients, days in CONSENTS:
        send(bus, venue, consent_payload(person, kind, purpose, recipients, days))
    expected: dict[str, set[str]] = {OBS: set(), DANSE: set()}
    owner: dict[str, str] = {}
    all_orders: set[str] = set()
    duplicate: tuple[str, dict[str, Any], str] | None = None
    for (person, venue), targets in EXPECTED.items():
        for i in range(ORDERS_PER_PAIR):
            payload = order_payload(person, i)
            msg_id = f"msg_{uuid.uuid4().hex}"
            event_id = send(bus, venue, payload, msg_id=msg_id)
            if (person, venue) == ("alice", "chaillot"):
                duplicate = (venue, payload, msg_id)
            all_orders.add(event_id)
            owner[event_id] = person
            for partner in targets:
                expected[partner].add(event_id)
    # the venue re-delivers one webhook: same webhook-id, same body -> same event, stored once
    assert duplicate is not None
    assert send(bus, duplicate[0], duplicate[1], msg_id=duplicate[2]) in expected[OBS]

    audit = asyncio.run(collect_audit(bus.bootstrap, all_orders, timeout=90))
    assert set(audit) == all_orders, "every order gets an audit decision"
    dropped = {e for e, ds in audit.items()  # the venue keeps its own orders whatever the consent
               if all(d["outcome"] == "dropped" for d in ds if d["outcome"] != "venue_store")}
    assert dropped == all_orders - expected[OBS] - expected[DANSE]
    lags = asyncio.run(wait_sinks_caught_up(bus.bootstrap, bus.partners, timeout=90))
    assert lags == {p: 0 for p in bus.partners}
    for partner in bus.partners:  # end-to-end latency (received_at -> insert) is exported per partner
        port = bus.stack.services[f"sink-{partner}"].metrics_port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        count = [line for line in text.splitlines()
                 if line.startswith(f'techne_sink_e2e_latency_seconds_count{{partner="{partner}"}}')]
        assert count and float(count[0].split()[-1]) >= len(expected[partner])
    for partner in bus.partners:
        assert bus.stack.stop(f"sink-{partner}") == 0

    pseudonyms: dict[str, dict[str, set[str]]] = {}
    for partner in bus.partners:
        # the session's bus is shared: other tests' traffic may be in the table, count ours
        rows = [r for r in partner_rows(bus.settings, partner, "SELECT toString(event_id), subject_pseudonym "
                                        "FROM ticket_orders") if r[0] in all_orders]
        ids = [r[0] for r in rows]
        assert set(ids) == expected[partner], partner
        assert len(ids) == len(set(ids)), f"{partner}: an order stored twice"
        pseudonyms[partner] = {}
        for event_id, pseudonym in rows:
            pseudonyms[partner].setdefault(owner[event_id], set()).add(pseudonym)
        dump = json.dumps(partner_rows(bus.settings, partner, "SELECT * FROM ticket_orders"), default=str)
        for email in PEOPLE.values():
            assert email not in dump.lower()
        assert "@" not in dump
        assert "C-alice" not in dump and "C-david" not in dump

    obs = pseudonyms[OBS]
    assert all(len(p) == 1 for p in obs.values()), "one pseudonym per subject, across venues"
    assert obs["alice"] != obs["david"]
    assert pseudonyms[DANSE]["david"] != obs["david"], "each partner has its own pseudonym domain"
