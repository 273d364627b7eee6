"""Every kind of audience data end to end (issues 15 and 16), on the real broker and chDB:
signed webhooks -> gateway -> worker -> partner and venue topics -> sinks -> tables.

The deploy agreements: the observatoire receives the order lifecycle, campaign events (clicks
included), scans and ad spend of the five venues (cross-venue analytics); the reseau-danse
receives the order lifecycle, page views and content interactions of chaillot and gemeaux
(marketing). At chaillot, Ana consented to both, Ben to nothing, and a visitor only browsed.

What must hold, for each kind: what an agreement allows reaches that partner's table once,
pseudonymized (never Ana's e-mail, customer id, barcode, URL query, IP); what it does not allow
(a kind outside the agreement, a person without consent) does not; a refund changes the order's
current state; and consent-exempt measurement (Ben's and the visitor's browsing) reaches the
venue's own store only: no partner topic carries it, no partner store holds it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import CATALOGUE
from schemas.kinds import MEASUREMENT_SCHEMA
from sinks.runner import partner_rows
from techne.accounting import collect_audit, wait_sinks_caught_up
from tests.conftest import Bus
from tests.integration.kafka_helpers import read_all
from tests.support.events import send

pytestmark = pytest.mark.integration
VENUE, OBS, DANSE = "chaillot", "observatoire", "reseau-danse"
OWN = f"venue:{VENUE}"
NOW = datetime.now(UTC)
RUN = uuid.uuid4().hex[:8]
ANA, BEN = f"ana.kinds.{RUN}@exemple.fr", f"ben.kinds.{RUN}@exemple.fr"
VISITOR = f"vis-{RUN}"
PERF = f"REP-{RUN}"
PERF_AT = (NOW + timedelta(days=9)).isoformat()


def at(minutes: int) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


def customer(email: str) -> dict[str, Any]:
    return {"email": email, "customer_id": f"C-{email[:3]}-{RUN}", "postal_code": "75016",
            "ip_address": "198.51.100.23", "city": "Paris", "country_code": "FR"}


def consent(email: str, purpose: str, partner: str) -> dict[str, Any]:
    return {"type": "consent.granted", "occurred_at": at(600), "customer": {"email": email}, "purpose": purpose,
            "recipients": [partner], "recipient_list_version": "2026-09", "proof_ref": "form:test"}


def events(email: str, order_id: str) -> dict[str, dict[str, Any]]:
    """One event of every kind for ``email`` (keyed by a short name)."""
    who = customer(email)
    campaign = {"campaign_id": f"CAMP-{RUN}", "campaign_name": "Temps fort danse", "message_id": f"MSG-{email}",
                "list_id": "LST-SAISON", "customer": who}
    return {
        "placed": {"type": "ticket.order_placed", "occurred_at": at(300), "customer": who, "order_id": order_id,
                   "production": "Giselle", "performance_id": PERF, "performance_at": PERF_AT,
                   "discipline": "danse", "tariff": "plein", "channel": "web", "quantity": 2, "amount_minor": 7000},
        "paid": {"type": "ticket.order_paid", "occurred_at": at(299), "customer": who, "order_id": order_id,
                 "amount_minor": 7000, "currency": "EUR", "channel": "web", "payment_method": "card",
                 "payment_ref": f"PSP-{RUN}"},
        "issued": {"type": "ticket.issued", "occurred_at": at(298), "source_system": "billetweb", "customer": who,
                   "order_id": order_id, "ticket_id": f"T-{email[:3]}-{RUN}", "barcode": f"BC{RUN}{email[:3]}",
                   "production": "Giselle", "performance_id": PERF, "price_minor": 3500, "currency": "EUR",
                   "performance_at": PERF_AT, "discipline": "danse", "tariff": "plein"},
        "refunded": {"type": "ticket.order_refunded", "occurred_at": at(200), "customer": who, "order_id": order_id,
                     "ticket_ids": [f"T-{email[:3]}-{RUN}"], "amount_minor": 7000, "currency": "EUR",
                     "refund_method": "original_payment", "reason": "customer_request"},
        "scan": {"type": "attendance.ticket_scanned", "occurred_at": at(100), "customer": who,
                 "barcode": f"BC{RUN}{email[:3]}", "performance_id": PERF, "gate": "Porte B", "result": "admitted"},
        "sent": {"type": "campaign.email_sent", "occurred_at": at(500), "subject_line": f"Bonjour {email}", **campaign},
        "opened": {"type": "campaign.email_opened", "occurred_at": at(450), "machine_open": False, **campaign},
        "unsubscribed": {"type": "campaign.email_unsubscribed", "occurred_at": at(400), "scope": "list",
                         "reason": f"trop d'envois, {email}", **campaign},
        "page": {"type": "web.page_viewed", "occurred_at": at(350), "customer": {**who, "visitor_id": VISITOR},
                 "session_id": f"S-{RUN}", "page_url": f"https://theatre-chaillot.example/giselle?email={email}#top",
                 "referrer_url": "https://www.google.com/search?q=giselle", "utm_source": "brevo",
                 "production_id": "SPEC-GISELLE"},
        "content": {"type": "web.content_interacted", "occurred_at": at(340),
                    "customer": {**who, "visitor_id": VISITOR},
                    "content_id": "VID-GISELLE", "content_type": "video", "action": "play", "duration_s": 90,
                    "page_url": f"https://theatre-chaillot.example/giselle?email={email}"},
    }


def stored(bus: Bus, owner: str, *sql: str) -> list[list[tuple[Any, ...]]]:
    """Run queries on a store with its sink stopped meanwhile (the embedded store is exclusive)."""
    service = f"sink-venue-{VENUE}" if owner == OWN else f"sink-{owner}"
    assert bus.stack.stop(service) == 0
    try:
        return [partner_rows(bus.settings, owner, q) for q in sql]
    finally:
        if owner == OWN:
            bus.stack.start_venue_sink(VENUE)
        else:
            bus.stack.start_sink(owner)


def test_every_kind_reaches_what_agreements_allow_and_exempt_measurement_only_the_venue(worker: Bus) -> None:
    bus = worker
    bus.stack.start_sink(OBS)
    bus.stack.start_sink(DANSE)
    bus.stack.start_venue_sink(VENUE)
    bus.stack.wait_group_stable(bus.settings.worker_id, bus.bootstrap)
    try:
        send(bus, VENUE, consent(ANA, "cross_venue_analytics", OBS))
        send(bus, VENUE, consent(ANA, "marketing", DANSE))
        ana = {name: send(bus, VENUE, body) for name, body in events(ANA, f"O-ANA-{RUN}").items()}
        ben = {name: send(bus, VENUE, body) for name, body in events(BEN, f"O-BEN-{RUN}").items()}
        visitor_page = send(bus, VENUE, {"type": "web.page_viewed", "occurred_at": at(30),
                                         "customer": {"visitor_id": VISITOR + "-x", "ip_address": "198.51.100.99"},
                                         "page_url": "https://theatre-chaillot.example/?utm=1"})
        spend = send(bus, VENUE, {"type": "ads.spend_reported", "occurred_at": at(60), "day": NOW.date().isoformat(),
                                  "platform": "meta", "account_id": f"act_{RUN}", "campaign_id": f"ADS-{RUN}",
                                  "impressions": 1200, "clicks": 40, "spend_minor": 5000, "currency": "EUR"})
        ids = {*ana.values(), *ben.values(), visitor_page, spend}
        audit = asyncio.run(collect_audit(bus.bootstrap, ids, timeout=120))
        assert set(audit) == ids, "every event decided by the worker"
        for event_id in ids:
            assert [d["outcome"] for d in audit[event_id]][-1] == "venue_store", "every kind kept by the venue"
        assert {d["reason"] for d in audit[ben["page"]]} == {"no_record", "exempt_measurement"}
        expected = {**{ana[k]: {OBS, DANSE} for k in ("placed", "paid", "issued", "refunded")},
                    **{ana[k]: {OBS} for k in ("scan", "sent", "opened", "unsubscribed")},
                    **{ana[k]: {DANSE} for k in ("page", "content")}, spend: {OBS}}
        for event_id, partners in expected.items():
            assert {d["partner"] for d in audit[event_id] if d["outcome"] == "shared"} == partners, [
                (d["outcome"], d["reason"], d["partner"]) for d in audit[event_id]]
        caught_up = asyncio.run(wait_sinks_caught_up(bus.bootstrap, [OBS, DANSE, OWN], timeout=120))
        assert caught_up == {OBS: 0, DANSE: 0, OWN: 0}

        # --- no partner topic ever carries exempt measurement ---------------------------------
        exempt = {ben["page"], ben["content"], visitor_page}
        measurement_id = CATALOGUE.versions(MEASUREMENT_SCHEMA)[-1].schema_id
        for partner in (OBS, DANSE):
            for stream in ("ticketing", "campaign", "mailing", "attendance", "web", "content", "adspend"):
                for value in asyncio.run(read_all(bus.bootstrap, f"partner.{partner}.{stream}")):
                    assert int.from_bytes(value[1:5], "big") != measurement_id
                    record = CATALOGUE.decode(value)[1]
                    assert str(record["event_id"]) not in exempt, (partner, stream)
                    assert str(record["event_id"]) not in set(ben.values()), "Ben never consented"
                    text = value.decode("latin-1")
                    for secret in (ANA, BEN, VISITOR, "198.51.100", "BC" + RUN, "?email", "MSG-", "act_"):
                        assert secret not in text, (partner, stream, secret)

        everything = "', '".join([*ana.values(), *ben.values(), visitor_page, spend])
        obs = dict(zip(["orders", "current", "scans", "campaign", "ads", "tables"], stored(
            bus, OBS,
            f"SELECT toString(event_id), status, count() OVER (PARTITION BY event_id) FROM ticket_orders "  # noqa: S608
            f"WHERE event_id IN ('{everything}')",
            f"SELECT status, counts, quantity, amount_minor FROM ticket_orders_current WHERE performance_id = '{PERF}'",  # noqa: S608
            f"SELECT toString(event_id), performance_id, result FROM ticket_scans WHERE event_id IN ('{everything}')",  # noqa: S608
            f"SELECT toString(event_id), event_type, campaign_id, scope FROM campaign_events "  # noqa: S608
            f"WHERE event_id IN ('{everything}')",
            f"SELECT toString(event_id), subject_pseudonym, spend_minor FROM ad_spend "  # noqa: S608
            f"WHERE event_id IN ('{everything}')",
            "SELECT name FROM system.tables WHERE database = 'observatoire'",
        ), strict=True))
        lifecycle = {ana[k]: k for k in ("placed", "paid", "issued", "refunded")}
        assert {r[0]: r[1] for r in obs["orders"]} == {e: {"placed": "placed", "paid": "paid", "issued": "issued",
                                                           "refunded": "refunded"}[k] for e, k in lifecycle.items()}
        assert all(r[2] == 1 for r in obs["orders"]), "each event once"
        assert obs["current"] == [("refunded", 0, 2, 7000)], "one order, refunded: it no longer counts"
        assert obs["scans"] == [(ana["scan"], PERF, "admitted")], "Ana's scan, per performance; not Ben's"
        assert {(r[0], r[1], r[3]) for r in obs["campaign"]} == {
            (ana["sent"], "campaign.email_sent", None), (ana["opened"], "campaign.email_opened", None),
            (ana["unsubscribed"], "campaign.email_unsubscribed", "list")}
        assert obs["ads"] == [(spend, "", 5000)], "ad spend: no person, no consent, under the agreement"
        tables = {n for (n,) in obs["tables"]}
        assert not tables & {"page_views", "content_interactions", "audience_measurement"}, "not in its agreement"

        danse = stored(bus, DANSE,
                       f"SELECT toString(event_id), page_path, utm_source FROM page_views "  # noqa: S608
                       f"WHERE event_id IN ('{everything}')",
                       f"SELECT toString(event_id), content_id, action FROM content_interactions "  # noqa: S608
                       f"WHERE event_id IN ('{everything}')",
                       f"SELECT count() FROM ticket_orders WHERE event_id IN ('{everything}')",  # noqa: S608
                       "SELECT name FROM system.tables WHERE database = 'reseau_danse'")
        assert danse[0] == [(ana["page"], "/giselle", "brevo")], "path only, Ana only"
        assert danse[1] == [(ana["content"], "VID-GISELLE", "play")]
        assert danse[2] == [(4,)]
        assert not {n for (n,) in danse[3]} & {"ticket_scans", "campaign_events", "ad_spend", "audience_measurement"}

        # --- the venue's own store: everything, in its own domain; exempt measurement only here --
        own = stored(bus, OWN,
                     f"SELECT toString(event_id), subject_pseudonym FROM ticket_orders "  # noqa: S608
                     f"WHERE event_id IN ('{everything}')",
                     f"SELECT toString(event_id), purpose FROM page_views WHERE event_id IN ('{everything}')",  # noqa: S608
                     f"SELECT toString(event_id), purpose, ip_prefix, city, page_path, subject_pseudonym, "  # noqa: S608
                     f"retain_until - toDate(occurred_at) FROM audience_measurement WHERE event_id IN ('{everything}')",
                     f"SELECT count() FROM ticket_scans WHERE event_id IN ('{everything}')",  # noqa: S608
                     f"SELECT count() FROM campaign_events WHERE event_id IN ('{everything}')",  # noqa: S608
                     f"SELECT count() FROM ad_spend WHERE event_id IN ('{everything}')",  # noqa: S608
                     "SELECT * FROM audience_measurement")
        assert len(own[0]) == 8, "every order event of Ana and Ben, whatever their consent"
        assert own[1] == [(ana["page"], "cross_venue_analytics")], "Ana's browsing is hers (her first consent)"
        measured = {r[0]: r for r in own[2]}
        assert set(measured) == exempt
        for row in measured.values():
            assert row[1] == "audience_measurement" and row[6] == 760, "25 months"
            assert row[2] in ("198.51.100.0/24",) and row[4] in ("/giselle", "/")
        assert measured[ben["page"]][3] == "Paris", "city at most"
        assert own[3:6] == [[(2,)], [(6,)], [(1,)]]
        dump = json.dumps(own[6], default=str)
        for secret in (BEN, VISITOR, "198.51.100.23", "?email", "?utm"):
            assert secret not in dump
        partner_pseudonyms = {r[0] for r in stored(bus, OBS, "SELECT DISTINCT subject_pseudonym FROM ticket_orders")[0]}
        assert not {r[1] for r in own[0]} & partner_pseudonyms, "the venue's domain is never a partner's"
    finally:
        for service in (f"sink-{OBS}", f"sink-{DANSE}", f"sink-venue-{VENUE}"):
            bus.stack.stop(service)
