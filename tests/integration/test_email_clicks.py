"""E-mail clicks end to end on the real broker and chDB: signed webhooks -> gateway -> worker ->
``partner.observatoire.campaign`` -> the observatoire's sink -> ``email_clicks``, then erasure.

What must hold (the deploy agreements: the observatoire receives orders and clicks of the five
venues for cross-venue analytics, with the campaign id): a consented person's click is stored
once, under the same pseudonym as that person's orders, with the campaign id and nothing of the
e-mail, the link URL or the message id; a click of a person who did not consent is not shared
(audited as dropped); withdrawing consent erases the person's clicks as well as their orders.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.codec import CATALOGUE
from sinks.runner import partner_rows
from techne.accounting import collect_audit, wait_sinks_caught_up
from tests.conftest import Bus
from tests.integration.kafka_helpers import read_all
from tests.integration.sink_helpers import produce
from tests.support.events import send

pytestmark = pytest.mark.integration
OBS = "observatoire"
VENUE = "opera-lyon"
NOW = datetime.now(UTC)
RUN = uuid.uuid4().hex[:8]
ANA, BEN = f"ana.clic.{RUN}@exemple.fr", f"ben.clic.{RUN}@exemple.fr"  # Ana consents, Ben never answers
CAMPAIGN = f"CAMP-{RUN}"


def consent(email: str, kind: str, at: datetime) -> dict[str, Any]:
    return {"type": f"consent.{kind}", "occurred_at": at.isoformat(), "customer": {"email": email},
            "purpose": "cross_venue_analytics", "recipients": [OBS] if kind == "granted" else [],
            "recipient_list_version": "2026-09", "proof_ref": "form:test"}


def order(email: str, at: datetime) -> dict[str, Any]:
    return {"type": "ticket.order_placed", "occurred_at": at.isoformat(),
            "customer": {"email": email, "customer_id": f"C-{email[:3]}", "postal_code": "69003"},
            "order_id": f"O-{uuid.uuid4().hex[:6]}", "production": "Tosca", "performance_id": "perf-1",
            "performance_at": (NOW + timedelta(days=20)).isoformat(), "discipline": "opera", "tariff": "plein",
            "channel": "web", "quantity": 1, "amount_minor": 9000}


def click(email: str, at: datetime) -> dict[str, Any]:
    return {"type": "campaign.email_clicked", "occurred_at": at.isoformat(), "source_system": "brevo",
            "customer": {"email": email, "customer_id": f"C-{email[:3]}"}, "campaign_id": CAMPAIGN,
            "campaign_name": "Lettre de novembre", "message_id": f"MSG-{RUN}-{email[:3]}", "list_id": "LST-SAISON",
            "link_url": f"https://www.opera-lyon.example/tosca?utm_source=brevo&who={email}", "link_id": "L3",
            "production_id": "SPEC-TOSCA-2026"}


def readme_conversion_query() -> str:
    """The conversion example query partners are given in the README (it must run on the real table)."""
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^-- E-mail campaign conversion.*?^ORDER BY c\.venue_id;", text, re.S | re.M)
    assert match, "README: the conversion example query"
    return match.group(0).rstrip(";")


def audit_of(bus: Bus, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    audit = asyncio.run(collect_audit(bus.bootstrap, ids, timeout=90))
    assert set(audit) == ids, "every event gets an audit decision"
    return audit


def outcomes(lines: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    return {(d["outcome"], d.get("partner")) for d in lines}


def stored(bus: Bus, *sql: str) -> list[list[tuple[Any, ...]]]:
    """Run queries on the observatoire's store (its sink stopped meanwhile: the store is exclusive)."""
    assert bus.stack.stop(f"sink-{OBS}") == 0
    try:
        return [partner_rows(bus.settings, OBS, q) for q in sql]
    finally:
        bus.stack.start_sink(OBS)


def test_clicks_reach_email_clicks_pseudonymized_only_with_consent_and_are_erased(worker: Bus) -> None:
    bus = worker
    bus.stack.start_sink(OBS)
    try:
        send(bus, VENUE, consent(ANA, "granted", NOW - timedelta(days=30)))
        orders = {send(bus, VENUE, order(who, NOW - timedelta(minutes=5))): who for who in (ANA, BEN)}
        clicks = {send(bus, VENUE, click(who, NOW - timedelta(days=days))): who
                  for who in (ANA, BEN) for days in (3, 20)}
        audit = audit_of(bus, set(orders) | set(clicks))
        for event_id, who in clicks.items():
            assert all(d["event_type"] == "campaign.email_clicked" for d in audit[event_id])
            expected = ("shared", OBS) if who == ANA else ("dropped", OBS)
            assert expected in outcomes(audit[event_id]), (who, audit[event_id])
        assert asyncio.run(wait_sinks_caught_up(bus.bootstrap, [OBS], timeout=90)) == {OBS: 0}
        # on the partner topic: Ana's clicks only, nothing of the e-mail, the link or the message
        topic = f"partner.{OBS}.campaign"
        mine = [v for v in asyncio.run(read_all(bus.bootstrap, topic))
                if str(CATALOGUE.decode(v)[1]["event_id"]) in clicks]
        assert {str(CATALOGUE.decode(v)[1]["event_id"]) for v in mine} == {e for e, w in clicks.items() if w == ANA}
        for value in mine:
            text = value.decode("latin-1").lower()
            assert ANA not in text and "msg-" not in text and "http" not in text and "c-ana" not in text
        # a redelivery (the worker is at least once) is stored once
        asyncio.run(produce(bus.bootstrap, topic, mine))
        assert asyncio.run(wait_sinks_caught_up(bus.bootstrap, [OBS], timeout=90)) == {OBS: 0}

        click_ids, order_ids = "', '".join(clicks), "', '".join(orders)
        rows, order_rows, columns, everything, conversion = stored(
            bus,
            "SELECT toString(event_id), subject_pseudonym, campaign_id, event_type, venue_id, purpose, "  # noqa: S608
            f"count() OVER (PARTITION BY event_id) FROM email_clicks WHERE event_id IN ('{click_ids}')",
            f"SELECT toString(event_id), subject_pseudonym FROM ticket_orders WHERE event_id IN ('{order_ids}')",  # noqa: S608
            "SELECT name FROM system.columns WHERE database = 'observatoire' AND table = 'email_clicks'",
            "SELECT * FROM email_clicks",
            readme_conversion_query(),
        )
        ana_clicks = {e for e, who in clicks.items() if who == ANA}
        assert {r[0] for r in rows} == ana_clicks, "Ana's clicks stored, Ben's (no consent) not"
        assert all(r[2:] == (CAMPAIGN, "campaign.email_clicked", VENUE, "cross_venue_analytics", 1) for r in rows)
        [(ana_order, order_pseudonym)] = order_rows
        assert orders[ana_order] == ANA and len(order_pseudonym) == 64
        assert {r[1] for r in rows} == {order_pseudonym}, "the same pseudonym as her orders: clicks join orders"
        names = {name for (name,) in columns}
        assert "campaign_id" in names
        assert not names & {"link_url", "message_id", "campaign_name", "list_id", "link_id", "subject", "email"}
        dump = json.dumps(everything, default=str).lower()
        for secret in (ANA, BEN, "msg-", "http", "c-ana", "c-ben", "@"):
            assert secret not in dump
        # Ana clicked 3 days and 20 days before ordering: one clicker, who converted within 7 days
        assert [tuple(r) for r in conversion if r[1] == CAMPAIGN] == [(VENUE, CAMPAIGN, 1, 1)]

        # Ana withdraws: her clicks are erased with her orders
        withdrawal = send(bus, VENUE, consent(ANA, "withdrawn", datetime.now(UTC)))
        deadline = time.monotonic() + 90
        commands: set[str] = set()
        while not commands and time.monotonic() < deadline:
            lines = asyncio.run(collect_audit(bus.bootstrap, {withdrawal}, timeout=30)).get(withdrawal, [])
            commands = {d["command_id"] for d in lines if d["outcome"] == "erasure_requested" and d["partner"] == OBS}
            time.sleep(0.5)
        assert commands, "the withdrawal issues an erasure command to the observatoire"
        erased: list[dict[str, Any]] = []
        while len(erased) < len(commands) and time.monotonic() < deadline:
            done = asyncio.run(collect_audit(bus.bootstrap, commands, timeout=5))
            erased = [d for lines in done.values() for d in lines if d["outcome"] == "erased"]
        assert len(erased) >= len(commands), "every erasure command executed by the sink"
        assert sum(d["rows_deleted"] for d in erased) == len(ana_clicks) + 1, "her clicks and her order deleted"
        # this sink process (restarted by the last `stored`): its erased-rows counters are Ana's, per table
        port = bus.stack.services[f"sink-{OBS}"].metrics_port
        erased_rows = {line.split('table="')[1].split('"')[0]: float(line.split()[-1])
                       for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines()
                       if line.startswith(f'techne_sink_erased_rows_total{{partner="{OBS}"')}
        assert {t: n for t, n in erased_rows.items() if n} == {"email_clicks": len(ana_clicks), "ticket_orders": 1}
        assert set(erased_rows) >= {"email_clicks", "ticket_orders"}, "every table's counter declared at 0"
        who = f"subject_pseudonym = '{order_pseudonym}'"
        [left] = stored(bus, f"SELECT (SELECT count() FROM email_clicks WHERE {who}), "  # noqa: S608
                             f"(SELECT count() FROM ticket_orders WHERE {who})")
        assert left == [(0, 0)], "no click and no order of Ana left"
    finally:
        bus.stack.stop(f"sink-{OBS}")
