"""A person's consent receipt on the real broker and chDB, after a grant and a withdrawal.

Through the gateway: a grant for marketing naming reseau-danse, an order shared under it, an old
grant for cross-venue analytics (expired by now), then the withdrawal. The worker erases at the
partner, the partner's sink deletes the row and records it, the audit sink stores everything;
``techne consent receipt`` then gives the 27560 layout with both events, their times, the
erasure done at the partner (rows deleted) and the recipients, retention and withdrawal method.
The receipt is read while the audit sink runs. A receipt for an unknown person is refused and
nothing is written.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from core.identity import subject_ref
from core.topics import AUDIT
from sinks.consumer import AUDIT_GROUP
from techne.accounting import collect_audit, group_lag, wait_sinks_caught_up
from techne.cli import app
from tests.conftest import Bus
from tests.support.events import send

pytestmark = pytest.mark.integration
VENUE, PARTNER = "chaillot", "reseau-danse"


def consent(email: str, kind: str, purpose: str, at: datetime, recipients: list[str]) -> dict[str, Any]:
    return {"type": f"consent.{kind}", "occurred_at": at.isoformat(), "customer": {"email": email},
            "purpose": purpose, "recipients": recipients, "recipient_list_version": "2026-09",
            "proof_ref": "form:receipt-test", "collection_method": "preference_center"}


def order(email: str, at: datetime) -> dict[str, Any]:
    return {"type": "ticket.order_placed", "event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(),
            "customer": {"email": email}, "order_id": f"O-{uuid.uuid4().hex[:8]}", "production": "Crowd",
            "performance_id": "perf-r", "performance_at": (at + timedelta(days=20)).isoformat(),
            "discipline": "danse", "tariff": "plein", "channel": "web", "quantity": 1, "amount_minor": 2500}


def files(bus: Bus) -> set[tuple[str, int]]:
    """Files of the bus's data directory but the logs and the running stores (which merge parts)."""
    root = bus.settings.data_dir
    return {(str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*")
            if p.is_file() and p.parts[len(root.parts)] not in ("logs", "audit", "partners", "worker", "kafka")}


def receipt_cli(bus: Bus, *args: str) -> Any:
    return CliRunner().invoke(app, ["consent", "receipt", "--venue", VENUE, *args], env=bus.env)


def test_receipt_after_a_grant_and_a_withdrawal_lists_the_erasures_at_partners(worker: Bus) -> None:
    bus = worker
    now = datetime.now(UTC)
    email = f"recu-{uuid.uuid4().hex[:10]}@exemple.fr"
    if f"sink-{PARTNER}" not in bus.stack.services:
        bus.stack.start_sink(PARTNER)
    had_audit_sink = "sink-audit" in bus.stack.services
    if not had_audit_sink:
        bus.stack.start_audit_sink()
    old = send(bus, VENUE, consent(email, "granted", "cross_venue_analytics", now - timedelta(days=420),
                                   ["observatoire"]))
    given = send(bus, VENUE, consent(email, "granted", "marketing", now - timedelta(hours=2), [PARTNER]))
    shared = send(bus, VENUE, order(email, now - timedelta(hours=1)))
    audit = asyncio.run(collect_audit(bus.bootstrap, {old, given, shared}, timeout=90))
    assert [d["outcome"] for d in audit[shared] if d["partner"] == PARTNER] == ["shared"]
    assert asyncio.run(wait_sinks_caught_up(bus.bootstrap, [PARTNER], timeout=90)) == {PARTNER: 0}
    withdrawn = send(bus, VENUE, consent(email, "withdrawn", "marketing", now - timedelta(minutes=5), []))
    lines = asyncio.run(collect_audit(bus.bootstrap, {withdrawn}, timeout=90))[withdrawn]
    commands = {d["command_id"] for d in lines if d["outcome"] == "erasure_requested" and d["partner"] == PARTNER}
    assert commands, lines
    erased = asyncio.run(collect_audit(bus.bootstrap, commands, timeout=90))
    assert set(erased) == commands
    deleted = sum(int(d["rows_deleted"]) for ds in erased.values() for d in ds[:1])
    assert deleted == 1  # the one order shared under the grant
    for _ in range(120):  # the audit sink has stored everything (it keeps running: receipts read beside it)
        if asyncio.run(group_lag(bus.bootstrap, AUDIT_GROUP, [AUDIT])) == 0:
            break
        time.sleep(0.5)
    try:
        result = receipt_cli(bus, "--email", email, "--lang", "en")
        assert result.exit_code == 0, result.output
        receipt = json.loads(result.stdout)
        ref = subject_ref(bus.env["TECHNE_SUBJECT_KEY"].encode(), VENUE, {"email": email})
        by_ref = receipt_cli(bus, "--person-ref", ref, "--lang", "en")
        assert by_ref.exit_code == 0, by_ref.output
        assert json.loads(by_ref.stdout)["event"] == receipt["event"]
        text = receipt_cli(bus, "--person-ref", ref, "--format", "text")
        assert text.exit_code == 0 and "- marketing : consentement retiré;" in text.stdout
        assert "    effacé chez reseau-danse le " in text.stdout and "(1 ligne(s))" in text.stdout
        before = files(bus)
        unknown = receipt_cli(bus, "--person-ref", "0" * 64)
        assert unknown.exit_code == 2
        assert "aucun consentement enregistré pour cette personne à chaillot" in unknown.output
        assert "no consent recorded for this person" in unknown.output
        assert files(bus) == before  # nothing written anywhere under the data directory
    finally:
        if not had_audit_sink:
            bus.stack.stop("sink-audit")

    assert receipt["record"]["piiPrincipalId"] == ref and receipt["record"]["schemaVersion"] == "techne-27560-1"
    events = receipt["event"]
    assert [(e["eventId"], e["eventState"], e["purpose"]) for e in events] == [
        (old, "consent given", "cross_venue_analytics"), (given, "consent given", "marketing"),
        (withdrawn, "consent withdrawn", "marketing")]
    for e in events:
        assert e["eventTime"] and e["recordedAt"] and e["recordedAt"] >= e["eventTime"]
    assert events[1]["recipients"] == [PARTNER] and events[1]["recipientListVersion"] == "2026-09"
    erasures = events[2]["erasuresAtPartners"]
    assert {e["commandId"] for e in erasures} == commands
    assert all(e["partner"] == PARTNER and e["state"] == "done" and e["erasedAt"] for e in erasures)
    assert sum(e["rowsDeleted"] for e in erasures) == 1
    assert events[0]["erasuresAtPartners"] == [] and events[1]["erasuresAtPartners"] == []
    purposes = {p["purpose"]: p for p in receipt["piiProcessing"]["purposes"]}
    assert purposes["marketing"]["status"] == "consent withdrawn"
    assert purposes["cross_venue_analytics"]["status"] == "consent expired"  # 420 days > 13 months
    (recipient,) = purposes["marketing"]["recipientThirdParties"]
    assert (recipient["name"], recipient["agreements"], recipient["retentionPeriod"]) == (
        PARTNER, ["dsa-reseau-danse-2026"], "P395D")
    assert purposes["marketing"]["lawfulBasis"].startswith("consent")
    assert "erases at every named partner" in purposes["marketing"]["withdrawalMethod"]
    assert receipt["partyIdentification"][0] == {"partyId": "urn:techne:venue:chaillot",
                                                 "partyName": "Chaillot – Théâtre national de la Danse",
                                                 "partyType": "PII controller"}
