import uuid
from datetime import UTC, date, datetime

import pytest

from schemas.agreements import Agreement
from streams.steps.consent import apply_consent
from streams.steps.route import route

KEY = b"k" * 32
AT = datetime(2026, 11, 1, 20, tzinfo=UTC)


def agreement(**kw: object) -> Agreement:
    base = {"id": "dsa-1", "provider_venues": ["v1"], "partner": "p1", "purposes": ["marketing"],
            "event_types": ["ticket.order_placed"], "allowed_fields": ["production", "quantity"],
            "retention_days": 30, "valid_from": date(2026, 1, 1), "valid_until": date(2026, 12, 31)}
    return Agreement.model_validate({**base, **kw})


def order(email: str = "a@b.fr", venue: str = "v1") -> dict:
    return {"event_id": uuid.uuid4(), "event_type": "ticket.order_placed", "occurred_at": AT, "received_at": AT,
            "venue_id": venue, "subject": {"email": email, "customer_id": "C1", "postal_code": "75011"},
            "order_id": "o", "production": "Tosca", "performance_id": "p", "performance_at": AT,
            "discipline": "opera", "tariff": "plein", "channel": "web", "quantity": 2, "amount_minor": 100,
            "currency": "EUR"}


def granted(partners: list[str], purpose: str = "marketing") -> dict:
    entry, _ = apply_consent(None, {"event_type": "consent.granted", "occurred_at": datetime(2026, 10, 1, tzinfo=UTC),
                                    "purpose": purpose, "recipients": partners})
    return entry


def test_shared_is_projected_and_pseudonymized() -> None:
    [d] = route(order(), [agreement()], granted(["p1"]), key_version=1, key=KEY)
    assert d.outcome == "shared"
    assert d.topic == "partner.p1.ticketing"
    assert d.record is not None
    assert d.record["production"] == "Tosca"
    assert d.record["quantity"] == 2
    assert d.record["amount_minor"] is None and d.record["postal_code"] is None and d.record["order_id"] is None
    assert "a@b.fr" not in repr(d.record) and "C1" not in repr(d.record)
    assert len(d.record["subject_pseudonym"]) == 64


def test_pseudonym_stable_per_subject_distinct_per_partner() -> None:
    a1 = route(order(), [agreement()], granted(["p1", "p2"]), key_version=1, key=KEY)[0].record
    a2 = route(order(), [agreement()], granted(["p1", "p2"]), key_version=1, key=KEY)[0].record
    b = route(order("z@b.fr"), [agreement()], granted(["p1"]), key_version=1, key=KEY)[0].record
    other = route(order(), [agreement(id="dsa-2", partner="p2")], granted(["p2"]), key_version=1, key=KEY)[0].record
    assert a1 and a2 and b and other
    assert a1["subject_pseudonym"] == a2["subject_pseudonym"]
    assert a1["subject_pseudonym"] != b["subject_pseudonym"]
    assert a1["subject_pseudonym"] != other["subject_pseudonym"]


def test_shared_domain_links_partners_only_when_named() -> None:
    x = route(order(), [agreement(pseudonym_domain="shared-x")], granted(["p1", "p2"]), key_version=1, key=KEY)
    y = route(order(), [agreement(id="d2", partner="p2", pseudonym_domain="shared-x")], granted(["p2"]),
              key_version=1, key=KEY)
    assert x[0].record and y[0].record
    assert x[0].record["subject_pseudonym"] == y[0].record["subject_pseudonym"]


def test_dropped_without_consent_and_no_agreement() -> None:
    [d] = route(order(), [agreement()], None, key_version=1, key=KEY)
    assert (d.outcome, d.reason) == ("dropped", "no_record")
    [d] = route(order(venue="v9"), [agreement()], granted(["p1"]), key_version=1, key=KEY)
    assert d.outcome == "no_agreement"


def test_agreement_outside_validity_routes_nothing() -> None:
    expired = agreement(valid_until=date(2026, 6, 30))
    assert route(order(), [expired], granted(["p1"]), key_version=1, key=KEY)[0].outcome == "no_agreement"


def test_quasi_identifiers_only_generalized() -> None:
    ag = agreement(allowed_fields=["departement", "production"])
    record = order()
    record["subject"] = {**record["subject"], "birth_date": None}
    [d] = route(record, [ag], granted(["p1"]), key_version=1, key=KEY)
    assert d.record is not None
    assert d.record["departement"] == "75" and d.record["postal_code"] is None and d.record["order_id"] is None


@pytest.mark.parametrize("bad", [
    {"allowed_fields": ["postal_code"]}, {"allowed_fields": ["order_id"]}, {"allowed_fields": ["subject_pseudonym"]},
    {"allowed_fields": ["email"]}, {"purposes": ["audience_measurement"]}, {"purposes": ["spying"]},
    {"valid_until": date(2025, 1, 1)}, {"partner": "Bad Id"}, {"unexpected": 1},
])
def test_invalid_agreements_rejected(bad: dict) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        agreement(**bad)


# --- e-mail clicks: routed to partner.<p>.campaign, same pseudonym domain as orders ---------------------------


def click(email: str = "a@b.fr", venue: str = "v1") -> dict:
    return {"event_id": uuid.uuid4(), "event_type": "campaign.email_clicked", "occurred_at": AT, "received_at": AT,
            "venue_id": venue, "source_system": "brevo",
            "subject": {"email": email, "customer_id": "C1", "postal_code": "75011"},
            "campaign_id": "CAMP-1", "campaign_name": "Temps fort danse", "message_id": "MSG-7731-0042",
            "list_id": "LST-1", "link_url": "https://v1.example/fr/tosca?utm=a@b.fr", "link_id": "L3",
            "production_id": "SPEC-TOSCA"}


def both(**kw: object) -> Agreement:
    return agreement(**{"event_types": ["ticket.order_placed", "campaign.email_clicked"],
                        "allowed_fields": ["production", "quantity", "campaign_id"], **kw})


def test_click_is_routed_to_the_campaign_stream_with_the_orders_pseudonym() -> None:
    from schemas.models import SHARED_EMAIL_CLICK, SHARED_TICKET_ORDER

    [c] = route(click(), [both()], granted(["p1"]), key_version=1, key=KEY)
    [o] = route(order(), [both()], granted(["p1"]), key_version=1, key=KEY)
    assert (c.outcome, c.topic, c.schema) == ("shared", "partner.p1.campaign", SHARED_EMAIL_CLICK)
    assert (o.topic, o.schema) == ("partner.p1.ticketing", SHARED_TICKET_ORDER)
    assert c.record is not None and o.record is not None
    assert c.record["subject_pseudonym"] == o.record["subject_pseudonym"], "clicks join orders per person"
    assert c.record["campaign_id"] == "CAMP-1"
    assert c.record["production_id"] is None, "not allowed by this agreement"
    assert set(c.record) == {"event_id", "event_type", "occurred_at", "received_at", "venue_id", "agreement_id",
                             "purpose", "subject_pseudonym", "pseudonym_key_version", "campaign_id", "production_id"}
    text = repr(c.record)
    assert "a@b.fr" not in text and "C1" not in text and "MSG-" not in text and "http" not in text


def test_click_pseudonym_differs_per_partner_domain() -> None:
    mine = route(click(), [both()], granted(["p1", "p2"]), key_version=1, key=KEY)[0].record
    other = route(click(), [both(id="dsa-2", partner="p2")], granted(["p2"]), key_version=1, key=KEY)[0].record
    assert mine and other and mine["subject_pseudonym"] != other["subject_pseudonym"]


def test_click_needs_consent_and_an_agreement_covering_clicks() -> None:
    [d] = route(click(), [both()], None, key_version=1, key=KEY)
    assert (d.outcome, d.reason) == ("dropped", "no_record")
    [d] = route(click(), [agreement()], granted(["p1"]), key_version=1, key=KEY)
    assert d.outcome == "no_agreement", "an orders-only agreement does not share clicks"


def test_shareable_types() -> None:
    from schemas.models import EMAIL_CLICK, TICKET_ORDER
    from streams.steps.route import shareable

    assert shareable(TICKET_ORDER, "ticket.order_placed") and shareable(EMAIL_CLICK, "campaign.email_clicked")
    assert not shareable(EMAIL_CLICK, "ticket.order_placed"), "a type must come with its own schema"
    assert shareable("org.techne.campaign.EmailOpened", "campaign.email_opened"), "every kind is shareable"
    assert not shareable("org.techne.web.SiteSearched", "web.searched"), "search terms are never shared"
    assert not shareable("org.techne.ticketing.SubscriptionSold", "subscription.sold")


def test_allowed_fields_are_checked_against_the_agreements_event_types() -> None:
    from pydantic import ValidationError

    assert both().allowed_fields == ["production", "quantity", "campaign_id"]
    with pytest.raises(ValidationError, match="campaign_id"):
        agreement(allowed_fields=["campaign_id"])  # orders only: no campaign id to share
    for never in ("link_url", "message_id", "campaign_name", "email"):
        with pytest.raises(ValidationError, match=never):
            both(allowed_fields=["campaign_id", never])
    with pytest.raises(ValidationError, match="event_types"):
        agreement(event_types=["campaign.email_opened"])
