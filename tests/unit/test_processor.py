"""The worker's per-message logic (no Faust, no Kafka): consent, routing, erasure, dead letters."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dlq import InvalidRateGuard, PoisonFlood
from schemas import CATALOGUE
from schemas.agreements import Agreement
from schemas.models import EMAIL_CLICK, ERASURE_COMMAND, SHARED_EMAIL_CLICK, SHARED_TICKET_ORDER
from sinks import audit
from streams.processor import Processor
from techne.accounting import audit_lines
from tests.support.builders import KEYS, NOW, Ledger, agreement, consent, order, subject


def with_clicks(partner: str = "p1") -> Agreement:
    return agreement(partner, event_types=["ticket.order_placed", "campaign.email_clicked"],
                     allowed_fields=["production", "departement", "campaign_id", "production_id"])








def click(email: str) -> bytes:
    return CATALOGUE.encode(EMAIL_CLICK, {
        "event_id": str(uuid.uuid4()), "event_type": "campaign.email_clicked", "occurred_at": NOW,
        "received_at": NOW, "venue_id": "v1", "source_system": "t", "subject": subject(email),
        "campaign_id": "CAMP-1", "campaign_name": "Temps fort", "message_id": f"MSG-{email}", "list_id": "L1",
        "link_url": f"https://v1.example/tosca?who={email}", "link_id": "L3", "production_id": "SPEC-TOSCA"})




def topics(result: Any) -> list[str]:
    return [o.topic for o in result.outputs]


def test_order_shared_only_after_consent() -> None:
    proc, ledger = Processor([agreement()], KEYS, 1), Ledger()
    assert "partner.p1.ticketing" not in topics(ledger.feed(proc, order("a@b.fr")))
    ledger.feed(proc, consent("a@b.fr", "granted"))
    shared = ledger.feed(proc, order("a@b.fr"))
    [out] = [o for o in shared.outputs if o.topic == "partner.p1.ticketing"]
    name, record = CATALOGUE.decode(out.value)
    assert name == SHARED_TICKET_ORDER
    assert record["pseudonym_key_version"] == 1
    [record] = [o for o in shared.outputs if o.topic == "techne.audit"]
    lines = audit_lines(record.value)
    assert lines[0]["outcome"] == "shared" and lines[0]["partner"] == "p1"
    assert (lines[-1]["outcome"], lines[-1]["reason"], lines[-1]["partner"]) == ("venue_store", "own_use", None)


def test_one_audit_record_per_message_with_one_line_per_decision() -> None:
    proc, ledger = Processor([agreement("p1"), agreement("p2"), agreement("p3")], KEYS, 1), Ledger()
    ledger.feed(proc, consent("a@b.fr", "granted", recipients=["p1", "p3"]))
    result = ledger.feed(proc, order("a@b.fr"))
    [record] = [o for o in result.outputs if o.topic == "techne.audit"]
    assert result.outputs[-1] is record, "the audit record follows the partner records it accounts for"
    lines = [json.loads(line) for line in record.value.split(b"\n")]
    assert [(d["partner"], d["outcome"]) for d in lines] == [("p1", "shared"), ("p2", "dropped"), ("p3", "shared"),
                                                             (None, "venue_store")]
    assert len({d["event_id"] for d in lines}) == 1 and record.key == lines[0]["event_id"].encode()
    assert audit_lines(record.value) == lines
    assert [r["partner"] for r in audit.parse_lines(record.value)] == ["p1", "p2", "p3", ""]


def test_withdrawal_emits_erasure_for_named_partners_and_every_key_version() -> None:
    proc, ledger = Processor([agreement("p1"), agreement("p2"), agreement("p3")], KEYS, 1), Ledger()
    ledger.feed(proc, consent("a@b.fr", "granted", days_ago=3, recipients=["p1", "p2"]))
    result = ledger.feed(proc, consent("a@b.fr", "withdrawn", days_ago=2, recipients=[]))
    commands = [CATALOGUE.decode(o.value) for o in result.outputs if o.topic.endswith(".erasure")]
    assert {(c[1]["partner"], c[1]["pseudonym_key_version"]) for c in commands} == {
        ("p1", 1), ("p1", 2), ("p2", 1), ("p2", 2), ("venue:v1", 1), ("venue:v1", 2)}, "the venue's store too"
    assert all(c[0] == ERASURE_COMMAND and c[1]["purposes"] == ["marketing"] for c in commands)
    # the pseudonym in the command is the one the partner received
    ledger.feed(proc, consent("z@b.fr", "granted", days_ago=3))
    shared = ledger.feed(proc, order("a@b.fr"))
    assert not [o for o in shared.outputs if o.topic.startswith("partner.")], "withdrawn: nothing shared"


def test_erasure_command_addresses_the_partner_pseudonym() -> None:
    proc, ledger = Processor([agreement("p1")], KEYS, 1), Ledger()
    ledger.feed(proc, consent("a@b.fr", "granted", days_ago=3))
    [shared] = [o for o in ledger.feed(proc, order("a@b.fr")).outputs if o.topic == "partner.p1.ticketing"]
    result = ledger.feed(proc, consent("a@b.fr", "withdrawn", days_ago=0))
    commands = [CATALOGUE.decode(o.value)[1] for o in result.outputs if o.topic == "partner.p1.erasure"]
    pseudonym = CATALOGUE.decode(shared.value)[1]["subject_pseudonym"]
    assert pseudonym in {c["subject_pseudonym"] for c in commands if c["pseudonym_key_version"] == 1}


def test_stale_withdrawal_changes_nothing_and_erases_nothing() -> None:
    proc, ledger = Processor([agreement()], KEYS, 1), Ledger()
    ledger.feed(proc, consent("a@b.fr", "granted", days_ago=1))
    result = ledger.feed(proc, consent("a@b.fr", "withdrawn", days_ago=5))
    assert result.ledger_update is None
    assert not [t for t in topics(result) if t.endswith(".erasure")]


def test_reprocessing_emits_identical_commands() -> None:
    withdrawal = consent("a@b.fr", "withdrawn", days_ago=0)
    ids = []
    for _ in range(2):
        proc, ledger = Processor([agreement()], KEYS, 1), Ledger()
        ledger.feed(proc, consent("a@b.fr", "granted", days_ago=3))
        result = ledger.feed(proc, withdrawal)
        ids.append(sorted(CATALOGUE.decode(o.value)[1]["command_id"] for o in result.outputs
                          if o.topic.endswith(".erasure")))
    assert ids[0] == ids[1] and ids[0]


@pytest.mark.parametrize(("value", "stage", "reason"), [
    (b"\x00ga", "decode", "truncated"), (b"\x00garbage", "decode", "unknown_schema"),
    (b"not avro at all", "decode", "bad_magic"),
])
def test_dead_letters_carry_reason_and_original_bytes(value: bytes, stage: str, reason: str) -> None:
    result = Processor([agreement()], KEYS, 1).handle(value, b"k", "raw.v1", lambda _: None)
    [dlq] = result.outputs
    assert result.invalid
    assert dlq.topic == f"dlq.{stage}" and dlq.value == value
    assert dict(dlq.headers)["techne-reason"] == reason.encode()


def test_poison_guard_trips_only_above_threshold() -> None:
    guard = InvalidRateGuard(window=100, threshold=0.5)
    for i in range(1000):
        guard.record(i % 2 == 0)  # exactly 50 %: fine
    with pytest.raises(PoisonFlood):
        for _ in range(100):
            guard.record(True)


DIRECT = st.emails().map(str.lower)


SHAREABLE = {"ticket": order, "click": click}
"""Every event type an agreement can share, with a builder of a raw event full of identifiers."""


@settings(max_examples=60, deadline=None)
@given(emails=st.lists(DIRECT, min_size=1, max_size=5, unique=True))
def test_no_direct_identifier_in_any_routed_event(emails: list[str]) -> None:
    proc, ledger = Processor([with_clicks("p1"), with_clicks("p2")], KEYS, 1), Ledger()
    pseudonyms: dict[tuple[str, str], set[str]] = {}
    topics_seen: set[str] = set()
    for email in emails:
        ledger.feed(proc, consent(email, "granted"), key=email)
        for _ in range(2):
            for build in SHAREABLE.values():
                for out in ledger.feed(proc, build(email), key=email).outputs:
                    text = out.value.decode("latin-1").lower()
                    assert email not in text and "cust-42" not in text
                    assert "msg-" not in text and "http" not in text, "no message id, no link url"
                    if out.topic.startswith("partner."):
                        topics_seen.add(out.topic)
                        partner = out.topic.split(".")[1]
                        record = CATALOGUE.decode(out.value)[1]
                        pseudonyms.setdefault((email, partner), set()).add(record["subject_pseudonym"])
    assert topics_seen == {f"partner.{p}.{s}" for p in ("p1", "p2") for s in ("ticketing", "campaign")}
    assert all(len(p) == 1 for p in pseudonyms.values()), "stable within a domain, orders and clicks alike"
    for email in emails:
        assert not pseudonyms[(email, "p1")] & pseudonyms[(email, "p2")]
    firsts = [next(iter(pseudonyms[(e, "p1")])) for e in emails]
    assert len(set(firsts)) == len(emails), "different subjects, different pseudonyms"


def test_click_shared_as_its_own_schema_only_after_consent() -> None:
    proc, ledger = Processor([with_clicks()], KEYS, 1), Ledger()
    refused = ledger.feed(proc, click("a@b.fr"))
    assert not [o for o in refused.outputs if o.topic.startswith("partner.")]
    [record] = [o for o in refused.outputs if o.topic == "techne.audit"]
    assert audit_lines(record.value)[0]["outcome"] == "dropped"
    ledger.feed(proc, consent("a@b.fr", "granted"))
    [out] = [o for o in ledger.feed(proc, click("a@b.fr")).outputs if o.topic.startswith("partner.")]
    name, record = CATALOGUE.decode(out.value)
    assert (out.topic, name) == ("partner.p1.campaign", SHARED_EMAIL_CLICK)
    assert (record["campaign_id"], record["production_id"]) == ("CAMP-1", "SPEC-TOSCA")
    assert "link_url" not in record and "message_id" not in record and "campaign_name" not in record
    assert out.key == record["subject_pseudonym"].encode()


def test_valid_events_of_unshareable_types_are_audited_not_dead_lettered() -> None:
    from schemas.examples import example_record

    name = next(n for n in CATALOGUE.names() if n.endswith("SiteSearched"))
    value = CATALOGUE.encode(name, example_record(CATALOGUE.entry(name).raw))
    result = Processor([agreement()], KEYS, 1).handle(value, b"k", "raw.v1", lambda _: None)
    assert not result.invalid
    [line] = result.outputs
    assert line.topic == "techne.audit"
    assert json.loads(line.value)["outcome"] == "no_agreement"


def test_event_type_label_stays_within_the_catalogue() -> None:
    """A raw record's ``event_type`` is a free string in its Avro schema: whoever can write a raw
    topic could mint one metric series per value. Unknown types are counted under ``other``."""
    from core import metrics
    from schemas.examples import example_record

    name = next(n for n in CATALOGUE.names() if n.endswith("SiteSearched"))
    minted = f"x.{uuid.uuid4().hex}"
    value = CATALOGUE.encode(name, {**example_record(CATALOGUE.entry(name).raw), "event_type": minted})

    def count(label: str) -> float:
        return metrics.WORKER.get_sample_value("techne_stream_events_total", {"event_type": label}) or 0.0

    before = count("other")
    Processor([agreement()], KEYS, 1).handle(value, b"k", "raw.v1", lambda _: None)
    assert metrics.WORKER.get_sample_value("techne_stream_events_total", {"event_type": minted}) is None
    assert count("other") == before + 1


def test_consent_purpose_label_stays_within_the_purposes() -> None:
    from core import metrics

    minted = f"p{uuid.uuid4().hex}"

    def count(label: str) -> float:
        return metrics.WORKER.get_sample_value("techne_consent_updates_total",
                                               {"purpose": label, "outcome": "applied"}) or 0.0

    before = count("other")
    Ledger().feed(Processor([agreement()], KEYS, 1), consent("a@b.fr", "granted", purpose=minted))
    assert metrics.WORKER.get_sample_value("techne_consent_updates_total",
                                           {"purpose": minted, "outcome": "applied"}) is None
    assert count("other") == before + 1
