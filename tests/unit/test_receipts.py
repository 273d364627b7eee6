"""The consent receipt's layout from events and audit lines (pure; the real broker and chDB are in
tests/integration/test_consent_receipt.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.agreements import load_agreements
from techne.receipt_text import render
from techne.receipts import ReceiptError, build

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
AGREEMENTS = load_agreements(Path(__file__).parents[1] / "fixtures" / "dataspace" / "agreements")


def consent(kind: str, purpose: str, days: float, recipients: list[str]) -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "event_type": f"consent.{kind}", "occurred_at": NOW - timedelta(days=days),
            "purpose": purpose, "recipients": recipients, "recipient_list_version": "2026-09",
            "collection_method": "checkbox", "wording_version": "w3"}


def line(event_id: object, outcome: str, **kw: Any) -> dict[str, Any]:
    return {"event_id": str(event_id), "outcome": outcome, "reason": kw.pop("reason", "applied"),
            "partner": kw.pop("partner", ""), "decided_at": kw.pop("decided_at", "2026-12-07 11:00:00.000000"),
            "rows_deleted": kw.pop("rows_deleted", None), "command_id": kw.pop("command_id", None)}


def receipt(events: list[dict[str, object]], audit: list[dict[str, object]]) -> dict[str, Any]:
    return build(venue="chaillot", venue_name="Chaillot", person_ref="r" * 64, events=events, audit=audit,
                 agreements=AGREEMENTS, ttls={}, now=NOW, lang="fr")


def test_withdrawal_lists_done_and_pending_erasures_and_purpose_states() -> None:
    grant = consent("granted", "marketing", 30, ["reseau-danse", "inconnu"])
    withdrawal = consent("withdrawn", "marketing", 1, [])
    old = consent("granted", "cross_venue_analytics", 400, ["observatoire"])
    audit = [line(grant["event_id"], "consent_recorded"), line(withdrawal["event_id"], "consent_recorded"),
             line(withdrawal["event_id"], "erasure_requested", reason="consent_withdrawn", partner="reseau-danse",
                  command_id="c1"),
             line(withdrawal["event_id"], "erasure_requested", reason="consent_withdrawn", partner="reseau-danse",
                  command_id="c2"),
             line("c1", "erased", partner="reseau-danse", rows_deleted=3, decided_at="2026-12-07 11:00:01.5")]
    r = receipt([withdrawal, old, grant], audit)
    states = [(e["eventState"], e["purpose"]) for e in r["event"]]
    assert states == [("consent given", "cross_venue_analytics"), ("consent given", "marketing"),
                      ("consent withdrawn", "marketing")]
    erasures = r["event"][2]["erasuresAtPartners"]
    assert [(e["commandId"], e["state"], e["rowsDeleted"]) for e in erasures] == [("c1", "done", 3),
                                                                                 ("c2", "pending", None)]
    assert erasures[0]["erasedAt"] == "2026-12-07T11:00:01.500000Z"
    purposes = {p["purpose"]: p for p in r["piiProcessing"]["purposes"]}
    assert purposes["marketing"]["status"] == "consent withdrawn"
    assert purposes["cross_venue_analytics"]["status"] == "consent expired"
    named = {x["name"]: x for x in purposes["marketing"]["recipientThirdParties"]}
    assert named["reseau-danse"]["agreements"] == ["dsa-reseau-danse-2026"]
    assert named["reseau-danse"]["retentionPeriod"] == "P395D"
    assert named["inconnu"]["agreements"] == [] and named["inconnu"]["retentionPeriod"] is None
    assert "efface chez chaque partenaire nommé" in purposes["marketing"]["withdrawalMethod"]
    assert r["piiProcessing"]["privacyNotice"] == "w3"
    text = render(r, "fr")
    assert "- marketing : consentement retiré;" in text
    assert "    reseau-danse — conserve au plus 395 jours (dsa-reseau-danse-2026)" in text
    assert "    inconnu — aucun accord : rien ne lui est transmis" in text
    assert "    effacé chez reseau-danse le 2026-12-07 11:00 (3 ligne(s))" in text
    assert "    effacement en attente chez reseau-danse" in text
    assert "Retirer son consentement : À tout moment" in text
    assert "erasure pending at reseau-danse" in render(r, "en")


def test_a_live_grant_has_its_end_date_and_an_erasure_request_withdraws_every_purpose() -> None:
    grant = consent("granted", "marketing", 10, ["reseau-danse"])
    erase = {"event_id": uuid.uuid4(), "event_type": "erasure.requested", "occurred_at": NOW - timedelta(days=1)}
    r = receipt([grant], [])
    (purpose,) = r["piiProcessing"]["purposes"]
    assert purpose["status"] == "consent given"
    assert purpose["validUntil"] == (NOW - timedelta(days=10 - 395)).isoformat().replace("+00:00", "Z")
    r = receipt([grant, erase], [])
    assert r["event"][1]["eventState"] == "erasure requested"
    assert r["piiProcessing"]["purposes"][0]["status"] == "erasure requested"


def test_an_expiry_fed_back_by_the_worker_is_an_event_with_its_erasures() -> None:
    grant = consent("granted", "marketing", 400, ["reseau-danse"])
    expiry = consent("expired", "marketing", 5, [])
    audit = [line(expiry["event_id"], "consent_expired", reason="applied"),
             line(expiry["event_id"], "erasure_requested", reason="consent_expired", partner="reseau-danse",
                  command_id="c9"),
             line("c9", "erased", partner="reseau-danse", rows_deleted=2)]
    r = receipt([grant, expiry], audit)
    last = r["event"][1]
    assert (last["eventState"], last["recordedAt"]) == ("consent expired", "2026-12-07T11:00:00Z")
    assert [(e["reason"], e["state"], e["rowsDeleted"]) for e in last["erasuresAtPartners"]] == [
        ("consent_expired", "done", 2)]
    assert r["piiProcessing"]["purposes"][0]["status"] == "consent expired"


def test_no_event_no_receipt() -> None:
    with pytest.raises(ReceiptError, match=r"aucun consentement enregistré .* / no consent recorded"):
        receipt([], [])
