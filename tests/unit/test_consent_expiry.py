"""Consent expiry (pure, with an injected "now"): a lapsed grant becomes a consent.expired event
that erases like a withdrawal and is audited as ``consent_expired``; audit lines say how the
event's source authenticated."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from schemas import CATALOGUE
from schemas.models import CONSENT
from streams.processor import Processor
from streams.steps.expiry import lapsed
from tests.support.builders import KEYS, NOW, Ledger, agreement, consent, order


def audit_of(result: Any) -> list[dict[str, Any]]:
    [record] = [o for o in result.outputs if o.topic == "techne.audit"]
    return [json.loads(line) for line in record.value.split(b"\n")]


def test_lapsed_grant_erases_like_a_withdrawal_and_is_audited() -> None:
    proc, ledger = Processor([agreement("p1"), agreement("p2")], KEYS, 1), Ledger()
    ledger.feed(proc, consent("a@b.fr", "granted", days_ago=10, recipients=["p1"]))
    assert lapsed("s1", ledger["s1"], NOW) == []  # 10 days old: alive
    later = NOW + timedelta(days=390)  # 400 days after the grant
    ((venue, record),) = lapsed("s1", ledger["s1"], later)
    assert venue == "v1" and record["event_type"] == "consent.expired"
    assert record["occurred_at"] == NOW - timedelta(days=10) + timedelta(days=395)
    assert record["subject"] == {"email": "a@b.fr"}
    result = ledger.feed(proc, CATALOGUE.encode(CONSENT, record))
    commands = [CATALOGUE.decode(o.value)[1] for o in result.outputs if o.topic.endswith(".erasure")]
    # the named partner, and the venue's own store (erased like on a withdrawal)
    assert {c["partner"] for c in commands} == {"p1", "venue:v1"}
    assert {c["reason"] for c in commands} == {"consent_expired"}
    assert len([c for c in commands if c["partner"] == "p1"]) == len(KEYS)  # every key version still in use
    lines = audit_of(result)
    assert lines[0]["outcome"] == "consent_expired" and lines[0]["reason"] == "applied"
    assert {line["reason"] for line in lines[1:]} == {"consent_expired"}
    assert lapsed("s1", ledger["s1"], later) == []  # nothing left to expire
    again = ledger.feed(proc, CATALOGUE.encode(CONSENT, record))  # a repeated scan: no second erasure
    assert not [o for o in again.outputs if o.topic.endswith(".erasure")]
    assert "subject" not in ledger["s1"]["marketing"]  # the identifier leaves the ledger with the grant


def test_configured_ttl_and_renewal() -> None:
    proc, ledger = Processor([agreement("p1")], KEYS, 1), Ledger()
    ledger.feed(proc, consent("a@b.fr", "granted", days_ago=40, recipients=["p1"]))
    ttls = {"marketing": timedelta(days=30)}
    ((_, record),) = lapsed("s1", ledger["s1"], NOW, ttls)
    ledger.feed(proc, consent("a@b.fr", "granted", days_ago=1, recipients=["p1"]))  # renewed before the scan ran
    renewed = ledger.feed(proc, CATALOGUE.encode(CONSENT, record))
    assert not [o for o in renewed.outputs if o.topic.endswith(".erasure")]
    assert ledger["s1"]["marketing"]["granted"] is True
    assert lapsed("s1", ledger["s1"], NOW, ttls) == []


def test_audit_lines_carry_the_source_authentication() -> None:
    proc, ledger = Processor([agreement("p1")], KEYS, 1), Ledger()
    granted = proc.handle(consent("a@b.fr", "granted", recipients=["p1"]), b"s1", "raw.v1", ledger.get,
                          "hmac-sha256:x-ha-signature")
    ledger["s1"] = granted.ledger_update or {}
    assert {line["auth"] for line in audit_of(granted)} == {"hmac-sha256:x-ha-signature"}
    shared = proc.handle(order("a@b.fr"), b"s1", "raw.v1", ledger.get, "poll:weezevent:api-key+access-token")
    lines = audit_of(shared)
    assert ("shared", "p1") in [(line["outcome"], line["partner"]) for line in lines]
    assert {line["auth"] for line in lines} == {"poll:weezevent:api-key+access-token"}
    assert "auth" not in audit_of(proc.handle(order("a@b.fr"), b"s1", "raw.v1", ledger.get))[0]
