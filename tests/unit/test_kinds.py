"""Every kind of data (issues 15 and 16), pure: the order lifecycle, kinds about no one, the
venue's own store and consent-exempt measurement, and the tables they land in."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.topics import SHARED_STREAMS
from schemas import CATALOGUE
from schemas.agreements import Agreement
from schemas.kinds import KINDS, MEASUREMENT_SCHEMA, STATUS_OF_TYPE, venue_domain
from schemas.sharing import PROJECTABLE_BY_TYPE
from sinks.tables import MEASUREMENT_TABLE, partner_tables, venue_tables
from streams.steps import generalize
from streams.steps.consent import apply_consent
from streams.steps.route import own_store, route

KEY = b"k" * 32
AT = datetime(2026, 11, 1, 20, tzinfo=UTC)
SUBJECT = {"email": "ana@exemple.fr", "customer_id": "C1", "postal_code": "69003", "visitor_id": "VIS-1",
           "ip_address": "203.0.113.77", "city": "Lyon", "country_code": "fr", "user_agent": "Mozilla/5.0 (iPhone)"}


def agreement(types: list[str], fields: list[str], **kw: Any) -> Agreement:
    return Agreement.model_validate({
        "id": "dsa-1", "provider_venues": ["v1"], "partner": "p1", "purposes": ["marketing"], "event_types": types,
        "allowed_fields": fields, "retention_days": 30, "valid_from": date(2026, 1, 1),
        "valid_until": date(2026, 12, 31), **kw})


def granted(partners: list[str], purpose: str = "marketing") -> dict[str, Any]:
    entry, _ = apply_consent(None, {"event_type": "consent.granted", "occurred_at": datetime(2026, 10, 1, tzinfo=UTC),
                                    "purpose": purpose, "recipients": partners})
    return entry


def event(event_type: str, subject: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "event_type": event_type, "occurred_at": AT, "received_at": AT,
            "venue_id": "v1", "subject": SUBJECT if subject is None else subject, **fields}


LIFECYCLE = [
    event("ticket.order_placed", order_id="O-1", production="Tosca", quantity=2, amount_minor=9000),
    event("ticket.order_paid", order_id="O-1", amount_minor=9000, channel="web"),
    event("ticket.issued", order_id="O-1", ticket_id="T-1", barcode="BC-123", production="Tosca", price_minor=4500),
    event("ticket.order_refunded", order_id="O-1", ticket_ids=["T-1", "T-2"], amount_minor=9000),
    event("ticket.order_cancelled", order_id="O-1", quantity=2),
    event("ticket.exchanged", order_id="O-1", new_performance_id="P-2", price_difference_minor=500),
]


def test_every_order_lifecycle_event_is_shared_with_its_status_and_one_order_ref() -> None:
    deal = agreement(list(STATUS_OF_TYPE), ["production", "quantity", "amount_minor", "performance_id", "channel"])
    records = []
    for raw in LIFECYCLE:
        [d] = route(raw, [deal], granted(["p1"]), key_version=1, key=KEY)
        assert (d.outcome, d.topic) == ("shared", "partner.p1.ticketing")
        assert d.record is not None and d.record["status"] == STATUS_OF_TYPE[raw["event_type"]]
        CATALOGUE.encode(d.schema, d.record)  # a valid SharedTicketOrder
        records.append(d.record)
    assert len({r["order_ref"] for r in records}) == 1, "the same order, whatever the event"
    assert len(records[0]["order_ref"]) == 64 and "O-1" not in repr(records)
    issued, refunded, exchanged = records[2], records[3], records[5]
    assert (issued["quantity"], issued["amount_minor"]) == (1, 4500), "an issued ticket: one ticket at its price"
    assert refunded["quantity"] == 2 and refunded["amount_minor"] == 9000
    assert (exchanged["performance_id"], exchanged["amount_minor"]) == ("P-2", 500)
    assert "BC-123" not in repr(records) and "T-1" not in repr(records)
    other = route(event("ticket.order_paid", order_id="O-2"), [deal], granted(["p1"]), key_version=1, key=KEY)
    assert other[0].record is not None and other[0].record["order_ref"] != records[0]["order_ref"]


def test_ad_spend_needs_an_agreement_but_no_consent_and_names_no_one() -> None:
    spend = event("ads.spend_reported", subject={}, day=date(2026, 10, 31), platform="meta", account_id="ACC-9",
                  campaign_id="ADS-1", impressions=1000, clicks=30, spend_minor=2500, currency="EUR")
    [none] = route(spend, [agreement(["ticket.order_placed"], ["production"])], None, key_version=1, key=KEY)
    assert none.outcome == "no_agreement"
    [d] = route(spend, [agreement(["ads.spend_reported"], ["day", "platform", "spend_minor"])], None,
                key_version=1, key=KEY)
    assert (d.outcome, d.reason, d.topic) == ("shared", "no_personal_data", "partner.p1.adspend")
    assert d.record is not None and d.record["subject_pseudonym"] == "" and d.record["spend_minor"] == 2500
    assert d.record["impressions"] is None, "not allowed, not shared"
    assert "ACC-9" not in repr(d.record), "the ad account id is never shared"


@pytest.mark.parametrize("kind", [k for k in KINDS if k.personal], ids=lambda k: k.name)
def test_every_personal_kind_is_shared_only_with_consent(kind: Any) -> None:
    raw = event(kind.event_types[0], **_required(kind.event_types[0]))
    deal = agreement(list(kind.event_types), sorted(PROJECTABLE_BY_TYPE[kind.event_types[0]]))
    [dropped] = route(raw, [deal], None, key_version=1, key=KEY)
    assert (dropped.outcome, dropped.reason) == ("dropped", "no_record")
    [d] = route(raw, [deal], granted(["p1"]), key_version=1, key=KEY)
    assert d.outcome == "shared" and d.topic == f"partner.p1.{kind.stream}" and d.schema == kind.schema
    assert d.record is not None
    CATALOGUE.encode(d.schema, d.record)
    text = repr(d.record)
    for secret in ("ana@exemple.fr", "VIS-1", "203.0.113", "C1'", "BC-", "https://"):
        assert secret not in text


def _required(event_type: str) -> dict[str, Any]:
    """Enough fields of each kind's first type for its shared schema (and some that must not pass)."""
    return {
        "ticket.order_placed": {"order_id": "O-1", "production": "Tosca", "quantity": 1},
        "campaign.email_clicked": {"campaign_id": "C", "link_url": "https://x/?e=ana@exemple.fr", "message_id": "M"},
        "campaign.email_sent": {"campaign_id": "C", "message_id": "M", "subject_line": "Bonjour Ana"},
        "attendance.ticket_scanned": {"barcode": "BC-1", "performance_id": "P-1", "result": "admitted"},
        "web.page_viewed": {"page_url": "https://v1.example/saison/tosca?email=ana@exemple.fr", "session_id": "S"},
        "web.content_interacted": {"content_id": "VID-1", "action": "play", "page_url": "https://v1.example/x"},
    }[event_type]


def test_own_store_keeps_every_field_in_the_venues_own_domain() -> None:
    raw = event("ticket.order_placed", order_id="O-1", production="Tosca", amount_minor=9000)
    deal = agreement(["ticket.order_placed"], ["production"])
    [shared] = route(raw, [deal], granted(["p1"]), key_version=1, key=KEY)
    own = own_store(raw, None, key_version=1, key=KEY)
    assert (own.outcome, own.reason, own.topic, own.partner) == ("venue_store", "own_use", "venue.v1.ticketing", None)
    assert own.record is not None and shared.record is not None
    assert own.record["amount_minor"] == 9000 and own.record["departement"] == "69", "every field"
    assert own.record["subject_pseudonym"] != shared.record["subject_pseudonym"], "never a partner's pseudonym"
    assert own.record["order_ref"] != shared.record["order_ref"]
    assert own.record["agreement_id"] == "venue:v1" and own.record["purpose"] == "venue_operations"
    assert venue_domain("v1") != deal.domain


def test_page_views_without_consent_become_exempt_measurement_only_in_the_venue_store() -> None:
    view = event("web.page_viewed", page_url="https://v1.example/saison/tosca?email=ana@exemple.fr#x",
                 referrer_url="https://www.google.com/search?q=ana", session_id="S-1", utm_source="brevo")
    deal = agreement(["web.page_viewed"], ["page_path", "utm_source"])
    [dropped] = route(view, [deal], None, key_version=1, key=KEY)
    assert dropped.outcome == "dropped" and dropped.record is None
    measured = own_store(view, None, key_version=1, key=KEY)
    assert (measured.reason, measured.topic, measured.schema) == (
        "exempt_measurement", "venue.v1.measurement", MEASUREMENT_SCHEMA)
    r = measured.record
    assert r is not None and r["purpose"] == "audience_measurement" and r["agreement_id"] == "measurement:v1"
    assert (r["page_path"], r["referrer_host"], r["utm_source"]) == ("/saison/tosca", "www.google.com", "brevo")
    assert (r["ip_prefix"], r["city"], r["country_code"]) == ("203.0.113.0/24", "Lyon", "FR")
    assert "ana" not in repr(r) and "VIS-1" not in repr(r) and "S-1" not in repr(r)
    CATALOGUE.encode(measured.schema, r)
    # with a consent (any purpose), the person's page views are kept as theirs, under that purpose
    kept = own_store(view, granted(["p1"]), key_version=1, key=KEY)
    assert (kept.reason, kept.topic, kept.purpose) == ("consented", "venue.v1.web", "marketing")


def test_the_visitor_key_is_per_venue_and_renewed_every_calendar_year() -> None:
    def key_of(venue: str, at: datetime) -> str:
        view = {**event("web.page_viewed", subject={"visitor_id": "VIS-1"}, page_url="/"), "venue_id": venue,
                "occurred_at": at}
        d = own_store(view, None, key_version=1, key=KEY)
        assert d.record is not None
        return str(d.record["subject_pseudonym"])

    jan, dec, next_jan = (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 12, 30, tzinfo=UTC),
                          datetime(2027, 1, 2, tzinfo=UTC))
    assert key_of("v1", jan) == key_of("v1", dec), "stable within a year: visits can be counted"
    assert key_of("v1", dec) != key_of("v1", next_jan), "renewed each year (at most 12 months < 13)"
    assert key_of("v1", jan) != key_of("v2", jan), "no key shared across venues"


def test_venue_tables_hold_every_kind_and_exempt_measurement_for_25_months() -> None:
    tables = venue_tables("opera-lyon")
    assert tables.database == "venue_opera_lyon" and tables.partner == "venue:opera-lyon"
    assert [t.name for t in tables.shared] == [*(k.table for k in KINDS), MEASUREMENT_TABLE]
    assert [topic for topic, _, _ in tables.streams] == [f"venue.opera-lyon.{s}" for s in SHARED_STREAMS] + [
        "venue.opera-lyon.measurement"]
    assert tables.topic("erasure") == "venue.opera-lyon.erasure"
    assert tables.retention.days_for("measurement:opera-lyon") == 760
    assert "amount_minor" in tables.orders.names and "departement" in tables.orders.names
    partner = partner_tables("p1", [agreement(["ticket.order_placed"], ["production"])])
    assert [t.name for t in partner.shared] == ["ticket_orders"], "a partner: only what its agreements cover"
    assert partner.topic("erasure") == "partner.p1.erasure"


def test_no_agreement_can_share_exempt_measurement() -> None:
    with pytest.raises(ValueError, match="audience_measurement"):
        agreement(["web.page_viewed"], ["page_path"], purposes=["audience_measurement"])
    assert MEASUREMENT_SCHEMA not in {k.schema for k in KINDS}, "no partner stream carries it"


@given(st.text(max_size=60))
def test_url_generalizers_never_keep_a_query_or_fragment(text: str) -> None:
    url = f"https://h.example/{text}?email=ana@exemple.fr#frag"
    path = generalize.url_path(url)
    assert path is None or ("?" not in path and "#" not in path and "ana@" not in path)
    host = generalize.url_host(url)
    assert host is None or host == "h.example"
