"""Vendor opt-in answers -> consent events, through the venue's mapping (pure)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.settings import DEFAULT_CONSENT_SOURCES
from producers.adapters import PUSH
from producers.adapters.billetweb import attendee_opt_ins
from producers.adapters.consent import (
    ConsentSources,
    SourceMapping,
    UnmappedQuestion,
    consent_events,
    load_consent_sources,
)
from producers.adapters.weezevent import map_participant, participant_opt_ins
from producers.ingest import prepare

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vendors"
SOURCES = load_consent_sources(DEFAULT_CONSENT_SOURCES)
HA_QUESTION = "J'accepte que mes réservations soient partagées avec l'Observatoire des publics"


def body(name: str) -> bytes:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    data.pop("_fixture")
    return json.dumps(data, ensure_ascii=False).encode()


def valid(payload: dict[str, Any], venue: str) -> None:
    prepare(payload, venue_id=venue, subject_key=b"k" * 32, fallback_id=uuid.uuid4(), auth="test")


def test_helloasso_custom_field_grants_before_the_order() -> None:
    adapter, raw = PUSH["helloasso"], body("helloasso_order_optin.json")
    events = consent_events("helloasso", adapter.opt_ins(raw), SOURCES.mapping("lieu-unique", "helloasso"))
    (consent,) = events  # one per question, not one per item; "Régime alimentaire" is ignored
    assert consent.payload["type"] == "consent.granted"
    assert (consent.payload["purpose"], consent.payload["recipients"], consent.payload["recipient_list_version"]) == (
        "cross_venue_analytics", ["observatoire"], "2026-09")
    assert consent.payload["customer"]["email"] == "camille.durand@exemple.fr"
    assert consent.payload["collection_point"] == "helloasso:formulaire-commande"
    valid(consent.payload, "lieu-unique")
    no = raw.replace(b'"Oui"', b'"Non"')
    assert consent_events("helloasso", adapter.opt_ins(no), SOURCES.mapping("lieu-unique", "helloasso")
                          )[0].payload["type"] == "consent.withdrawn"


def test_unknown_question_is_refused_in_french_and_english() -> None:
    raw = body("helloasso_order_optin.json").replace("Régime alimentaire".encode(), b"Taille de T-shirt")
    with pytest.raises(UnmappedQuestion) as err:
        consent_events("helloasso", PUSH["helloasso"].opt_ins(raw), SOURCES.mapping("lieu-unique", "helloasso"))
    assert "Taille de T-shirt" in err.value.fr and "non reliée" in err.value.fr
    assert "Taille de T-shirt" in err.value.en and "not mapped" in err.value.en
    weird = body("helloasso_order_optin.json").replace(b'"Oui"', b'"Peut-etre"')
    with pytest.raises(UnmappedQuestion, match="neither yes nor no"):
        consent_events("helloasso", PUSH["helloasso"].opt_ins(weird), SOURCES.mapping("lieu-unique", "helloasso"))


def test_a_source_without_mapping_gives_no_consent() -> None:
    raw = body("helloasso_order_optin.json")
    assert consent_events("helloasso", PUSH["helloasso"].opt_ins(raw), None) == []


def test_secutix_contact_opt_ins_grant_then_revoke() -> None:
    adapter, mapping = PUSH["secutix"], SOURCES.mapping("opera-lyon", "secutix")
    (grant,) = consent_events("secutix", adapter.opt_ins(body("secutix_order_closed_optin.json")), mapping)
    assert grant.payload["type"] == "consent.granted" and grant.payload["customer"]["customer_id"] == "100234"
    update = body("secutix_contact_updated.json")
    assert adapter.events(update) == []
    (revoke,) = consent_events("secutix", adapter.opt_ins(update), mapping)
    assert revoke.payload["type"] == "consent.withdrawn" and revoke.key != grant.key
    assert revoke.payload["occurred_at"] > grant.payload["occurred_at"]
    for e in (grant, revoke):
        valid(e.payload, "opera-lyon")


def test_billetweb_custom_questions() -> None:
    attendees = json.loads(body("billetweb_attendees_optin.json"))["response"]
    (consent,) = consent_events("billetweb", attendee_opt_ins(attendees[0]), SOURCES.mapping("mixt", "billetweb"))
    assert consent.payload["type"] == "consent.granted" and consent.payload["customer"]["email"] == (
        "ines.moreau@exemple.fr")
    valid(consent.payload, "mixt")


def test_weezevent_answers_and_refund() -> None:
    participants = json.loads(body("weezevent_participants.json"))["response"]["participants"]
    event = json.loads(body("weezevent_events.json"))["response"]["events"][0]
    consents = consent_events("weezevent", participant_opt_ins(participants[0]), SOURCES.mapping("gemeaux",
                                                                                                   "weezevent"))
    assert {(c.payload["purpose"], c.payload["type"]) for c in consents} == {
        ("cross_venue_analytics", "consent.granted"), ("marketing", "consent.withdrawn")}
    (issued,) = map_participant(participants[0], event)
    assert issued.key == "participant:90001:issued" and issued.payload["price_minor"] == 2800
    assert issued.payload["performance_at"] == "2026-12-12T20:30:00+01:00"
    issued2, refunded = map_participant({**participants[0], "deleted": True, "last_update": "2026-11-10 10:00:00"},
                                        event)
    assert issued2 == issued and refunded.key == "participant:90001:refunded"
    for e in (*consents, issued, refunded):
        valid(e.payload, "gemeaux")


def test_mapping_file_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("venues: {mixt: {billetweb: {questions: {Q: {purpose: spying, recipients: [x], "
                   "recipient_list_version: v1}}}}}")
    with pytest.raises(ConfigError, match="unknown purpose 'spying'"):
        load_consent_sources(bad)
    assert load_consent_sources(tmp_path / "absent.yaml") == ConsentSources()
    SOURCES.check_recipients({"lieu-unique": {"observatoire"}, "opera-lyon": {"observatoire"},
                              "mixt": {"observatoire"}, "gemeaux": {"observatoire", "reseau-danse"}})
    with pytest.raises(ConfigError, match="reseau-danse"):
        SOURCES.check_recipients({"gemeaux": {"observatoire"}, "lieu-unique": {"observatoire"},
                                  "opera-lyon": {"observatoire"}, "mixt": {"observatoire"}})
    SOURCES.check_recipients({"elsewhere": set()})  # a directory without the pilot venues: nothing to check
    assert isinstance(SOURCES.mapping("gemeaux", "weezevent"), SourceMapping)
