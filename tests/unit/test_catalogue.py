"""The catalogue's contracts: privacy tags, stable ids, versions, examples, lockstep models and docs."""

from __future__ import annotations

import copy
import json
import shutil
import uuid
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import fastavro
import pytest

import schemas.generated.records as records
from schemas import docs, gen_models
from schemas.checks import doc_problems, event_type_problems, fingerprint_problems, privacy_problems
from schemas.codec import CATALOGUE, frame_header
from schemas.customer import OptionalCustomer
from schemas.examples import example_record, venue_json
from schemas.gen_models import ENVELOPE
from schemas.loader import SCHEMA_DIR, ManifestError, load_versions
from schemas.models import (
    CONSENT,
    ERASURE_COMMAND,
    INCOMING,
    INCOMING_MODELS,
    SHARED_TICKET_ORDER,
    TICKET_ORDER,
    Channel,
    Discipline,
    Tariff,
    to_record,
)
from schemas.privacy import IDENTIFYING, privacy_tags, tag_problems

VERSIONS = load_versions()
NAMES = CATALOGUE.names()


def test_catalogue_covers_the_issue() -> None:
    event_types = {t for n in NAMES for t in CATALOGUE.entry(n).raw.get("techne.event_types", [])}
    assert {"ticket.order_placed", "ticket.order_paid", "ticket.issued", "ticket.order_cancelled",
            "ticket.order_refunded", "ticket.exchanged", "subscription.sold", "attendance.ticket_scanned",
            "web.page_viewed", "web.content_interacted", "web.cart_updated", "web.searched",
            "web.newsletter_signed_up", "campaign.email_sent", "campaign.email_delivered", "campaign.email_opened",
            "campaign.email_clicked", "campaign.email_bounced", "campaign.email_unsubscribed", "ads.spend_reported",
            "consent.granted", "consent.withdrawn", "consent.expired", "erasure.requested"} <= event_types


def test_existing_ids_are_stable() -> None:
    ids = {(v.name, v.version): v.schema_id for v in VERSIONS}
    assert ids[(TICKET_ORDER, 1)] == 1001
    assert ids[(CONSENT, 1)] == 1101
    assert ids[(SHARED_TICKET_ORDER, 1)] == 2001
    assert ids[(ERASURE_COMMAND, 1)] == 2101
    assert len(set(ids.values())) == len(ids)


def test_every_field_of_every_version_has_a_valid_privacy_tag() -> None:
    assert privacy_problems(VERSIONS) == []


def test_a_missing_or_wrong_tag_is_reported_with_its_path() -> None:
    raw = copy.deepcopy(CATALOGUE.entry(TICKET_ORDER).raw)
    subject = next(f for f in raw["fields"] if f["name"] == "subject")
    subject["type"]["fields"].append({"name": "nickname", "type": ["null", "string"], "default": None})
    raw["fields"].append({"name": "seat_zone", "type": "string", "techne.privacy": "secret"})
    problems = tag_problems(raw)
    assert any("subject.nickname" in p for p in problems)
    assert any("seat_zone" in p and "'secret'" in p for p in problems)


def test_record_field_carries_its_most_sensitive_tag() -> None:
    raw = copy.deepcopy(CATALOGUE.entry(TICKET_ORDER).raw)
    next(f for f in raw["fields"] if f["name"] == "subject")["techne.privacy"] = "quasi"
    assert tag_problems(raw) == ["TicketOrderPlaced.subject: record field tagged 'quasi', its fields need 'direct'"]


def test_privacy_tags_helper() -> None:
    tags = privacy_tags(TICKET_ORDER)
    assert tags["subject.email"] == tags["subject.phone"] == tags["subject.last_name"] == "direct"
    assert tags["subject.postal_code"] == tags["subject.birth_date"] == tags["subject.ip_address"] == "quasi"
    assert tags["production"] == "none"
    assert "subject" not in tags and privacy_tags(TICKET_ORDER, leaves_only=False)["subject"] == "direct"
    assert privacy_tags("org.techne.ticketing.TicketIssued")["barcode"] == "direct"
    assert privacy_tags("org.techne.web.SiteSearched")["query"] == "free_text"


def test_ad_spend_holds_no_personal_data_and_partners_get_no_direct_identifier() -> None:
    assert not set(privacy_tags("org.techne.ads.AdSpendReported").values()) & IDENTIFYING
    for name in (SHARED_TICKET_ORDER, ERASURE_COMMAND):
        assert "direct" not in privacy_tags(name).values()
        assert "pseudonym" in privacy_tags(name).values()


def test_published_versions_are_not_edited() -> None:
    assert fingerprint_problems(VERSIONS) == []


def test_event_types_belong_to_one_schema_and_fields_are_documented_in_both_languages() -> None:
    assert event_type_problems(VERSIONS) == []
    assert doc_problems(VERSIONS) == []


def test_entry_is_latest_and_every_version_id_decodes() -> None:
    assert CATALOGUE.entry(TICKET_ORDER).version == 2
    assert [e.schema_id for e in CATALOGUE.versions(TICKET_ORDER)] == [1001, 1002]
    assert CATALOGUE.by_id(1001).version == 1


def test_a_v1_record_decodes_into_the_latest_shape() -> None:
    v1 = CATALOGUE.versions(TICKET_ORDER)[0]
    record = {k: v for k, v in example_record(CATALOGUE.entry(TICKET_ORDER).raw).items()
              if k in {f["name"] for f in v1.raw["fields"]}}
    record["subject"] = {"email": "a@b.fr", "customer_id": None, "postal_code": "69003"}
    record["schema_version"] = 1
    buf = BytesIO()
    buf.write(frame_header(1001))
    fastavro.schemaless_writer(buf, v1.parsed, record)
    name, back = CATALOGUE.decode(buf.getvalue())
    assert name == TICKET_ORDER
    assert back["schema_version"] == 1
    assert back["hall"] is None and back["is_invitation"] is False and back["booking_fee_minor"] == 0
    assert back["subject"] == {**dict.fromkeys(OptionalCustomer.model_fields), "email": "a@b.fr",
                               "postal_code": "69003"}


@pytest.mark.parametrize("name", NAMES)
def test_example_record_roundtrips_and_matches_the_generated_model(name: str) -> None:
    raw = CATALOGUE.entry(name).raw
    decoded_name, back = CATALOGUE.decode(CATALOGUE.encode(name, example_record(raw)))
    assert decoded_name == name
    getattr(records, raw["name"]).model_validate(back)


@pytest.mark.parametrize("name", sorted(INCOMING_MODELS))
def test_venue_example_is_accepted_and_becomes_a_record_of_its_schema(name: str) -> None:
    event = INCOMING.validate_python(venue_json(CATALOGUE.entry(name).raw))
    got, record = to_record(event, venue_id="opera-lyon", received_at=datetime(2026, 11, 14, tzinfo=UTC),
                            fallback_id=uuid.UUID(int=3))
    assert got == name
    assert record["schema_version"] == CATALOGUE.entry(name).version
    decoded_name, back = CATALOGUE.decode(CATALOGUE.encode(name, record))
    assert decoded_name == name and back["venue_id"] == "opera-lyon"


def test_incoming_models_mirror_their_schema() -> None:
    for name, model in INCOMING_MODELS.items():
        fields = {f["name"]: f for f in CATALOGUE.entry(name).raw["fields"] if f["name"] not in ENVELOPE}
        own = {k: v for k, v in model.model_fields.items() if k not in {"type", "event_id", "occurred_at",
                                                                         "source_system", "customer"}}
        assert set(own) == set(fields), name
        for field_name, info in own.items():
            assert info.is_required() == ("default" not in fields[field_name]), f"{name}.{field_name}"


def test_customer_block_mirrors_the_subject_schema() -> None:
    subject = next(f["type"] for f in CATALOGUE.entry(TICKET_ORDER).raw["fields"] if f["name"] == "subject")
    assert list(OptionalCustomer.model_fields) == [f["name"] for f in subject["fields"]]


def test_ticketing_enums_mirror_the_avro_enums() -> None:
    types = {f["name"]: f["type"] for f in CATALOGUE.entry(TICKET_ORDER).raw["fields"]}
    for enum, field in ((Discipline, "discipline"), (Tariff, "tariff"), (Channel, "channel")):
        assert [e.value for e in enum] == types[field]["symbols"]


def test_phone_is_normalized_to_e164_and_email_lowercased() -> None:
    c = OptionalCustomer(phone="06 12 34 56 78", email="Claire@Exemple.FR")
    assert c.phone == "+33612345678" and c.email == "claire@exemple.fr"
    with pytest.raises(ValueError, match="phone"):
        OptionalCustomer(phone="12")


def test_generated_models_are_up_to_date() -> None:
    assert gen_models.stale() == [], "run `techne schemas models` and commit schemas/generated/"


def test_catalogue_docs_are_up_to_date() -> None:
    assert docs.stale() == [], "run `techne schemas docs` and commit docs/catalogue.*.md"


def test_stale_docs_are_detected(tmp_path: Path) -> None:
    docs.write(tmp_path)
    assert docs.stale(tmp_path) == []
    (tmp_path / "catalogue.fr.md").write_text("vieux")
    assert docs.stale(tmp_path) == ["catalogue.fr.md"]


def test_manifest_errors_name_the_problem(tmp_path: Path) -> None:
    shutil.copytree(SCHEMA_DIR, tmp_path / "avro")
    manifest = json.loads((SCHEMA_DIR.parent / "manifest.json").read_text())
    manifest["schemas"][CONSENT][0]["id"] = 1001
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="duplicate schema id 1001"):
        load_versions(tmp_path / "avro", tmp_path / "manifest.json")
