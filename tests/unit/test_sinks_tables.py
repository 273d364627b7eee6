"""Pure sink logic: partner tables from agreements (projection, retention) and the Avro fast path."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, InvalidMessage
from core.settings import DEFAULT_AGREEMENTS
from schemas.agreements import Agreement, load_agreements
from schemas.codec import CATALOGUE
from schemas.models import CONSENT, SHARED_TICKET_ORDER
from sinks.framing import SharedFormat
from sinks.records import decode_row
from sinks.tables import RETAIN_UNTIL, Retention, partner_tables, shortened_retention_sql

SHARED = SharedFormat()


def agreement(**overrides: Any) -> Agreement:
    fields: dict[str, Any] = {
        "id": "dsa-a", "provider_venues": ["opera-lyon"], "partner": "p1", "purposes": ["research"],
        "event_types": ["ticket.order_placed"], "allowed_fields": ["quantity"], "retention_days": 30,
        "valid_from": "2026-01-01", "valid_until": "2027-01-01",
    }
    return Agreement.model_validate({**fields, **overrides})


def record(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "event_type": "ticket.order_placed",
        "occurred_at": datetime(2026, 3, 9, 20, 15, 1, 250, tzinfo=UTC),
        "received_at": datetime(2026, 3, 9, tzinfo=UTC),
        "venue_id": "opera-lyon", "agreement_id": "dsa-a", "purpose": "research", "subject_pseudonym": "a" * 64,
        "pseudonym_key_version": 1, "quantity": 2,
    }
    out.update(overrides)
    return out


# --- projection and retention ----------------------------------------------------------------


def test_only_projected_columns_plus_the_always_present_ones() -> None:
    agreements = load_agreements(DEFAULT_AGREEMENTS)
    danse = partner_tables("reseau-danse", agreements).orders.names
    obs = partner_tables("observatoire", agreements).orders.names
    always = ("event_id", "event_type", "occurred_at", "received_at", "venue_id", "agreement_id", "purpose",
              "subject_pseudonym", "pseudonym_key_version")
    assert danse[: len(always)] == always and danse[-1] == RETAIN_UNTIL
    assert set(danse) - set(always) - {RETAIN_UNTIL, "status", "order_ref"} == {
        "production", "performance_id", "performance_at", "discipline", "tariff", "channel", "quantity",
        "production_id"}
    assert {"status", "order_ref"} <= set(danse), "the lifecycle columns, whatever the agreement lists"
    assert "departement" not in danse and "amount_minor" not in danse
    assert {"departement", "age_band", "amount_minor"} <= set(obs)
    assert "postal_code" not in obs and "order_id" not in obs  # never shared raw: no column at all


def test_several_agreements_widen_the_projection_and_keep_their_retentions() -> None:
    tables = partner_tables("p1", [
        agreement(),
        agreement(id="dsa-b", allowed_fields=["departement"], retention_days=400),
        agreement(id="other", partner="p2", allowed_fields=["currency"]),
    ])
    assert {"quantity", "departement"} <= set(tables.orders.names) and "currency" not in tables.orders.names
    assert tables.retention == Retention((("dsa-a", 30), ("dsa-b", 400)), 30)
    assert tables.retention.max_days == 400
    assert tables.orders.column(RETAIN_UNTIL).default_sql == (
        "toDate(occurred_at) + transform(agreement_id, ['dsa-a', 'dsa-b'], [30, 400], 30)"
    )


def test_retention_dates_match_the_column_default() -> None:
    retention = Retention((("a", 30), ("b", 400)), 30)
    at = int((datetime(2026, 1, 31, 23, 59, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6)
    assert retention.until(at, "a") == date(2026, 3, 2)
    assert retention.until(at, "b") == date(2026, 1, 31) + timedelta(days=400)
    assert retention.until(at, "unknown") == date(2026, 3, 2)  # the shortest


def test_a_partner_without_agreement_gets_no_table() -> None:
    with pytest.raises(ConfigError, match="no data-sharing agreement"):
        partner_tables("nobody", [agreement()])


def test_shortened_retention_statements_are_parameterized() -> None:
    tables = partner_tables("p1", [agreement()])
    ((count, update, params),) = shortened_retention_sql(tables.orders, tables.retention)
    assert count.startswith("SELECT count() FROM `p1`.`ticket_orders` WHERE agreement_id = {a:String}")
    assert "UPDATE `retain_until` = toDate(occurred_at) + {n:UInt32}" in update
    assert params == {"a": "dsa-a", "n": 30}


# --- the fast path agrees with the full decoder -------------------------------------------------

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
times = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2299, 12, 31), timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(venue=texts, agreement_id=texts, purpose=texts, pseudonym=texts, at=times,
       postal=st.none() | texts, quantity=st.none() | st.integers(-(2**31), 2**31 - 1))
def test_parse_reads_what_the_full_decoder_reads(venue: str, agreement_id: str, purpose: str, pseudonym: str,
                                                 at: datetime, postal: str | None, quantity: int | None) -> None:
    rec = record(venue_id=venue, agreement_id=agreement_id, purpose=purpose, subject_pseudonym=pseudonym,
                 occurred_at=at, postal_code=postal, quantity=quantity)
    value = CATALOGUE.encode(SHARED_TICKET_ORDER, rec)
    row, full = SHARED.parse(value), decode_row(value)
    details = SHARED.details(row)
    assert details is not None
    assert (row.event_id, details.venue_id, details.agreement_id, details.purpose, details.subject_pseudonym) == (
        full["event_id"], full["venue_id"], full["agreement_id"], full["purpose"], full["subject_pseudonym"])
    assert (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=row.occurred_at_us)).strftime(
        "%Y-%m-%d %H:%M:%S.%f") == full["occurred_at"]
    assert row.value == value and row.schema_id == CATALOGUE.entry(SHARED_TICKET_ORDER).schema_id


def test_container_holds_the_records_one_per_block() -> None:
    records = [record(quantity=i) for i in range(5)]
    rows = [SHARED.parse(CATALOGUE.encode(SHARED_TICKET_ORDER, r)) for r in records]
    data = SHARED.container(rows[0].schema_id, rows)
    read = list(fastavro.reader(io.BytesIO(data)))
    assert [str(r["event_id"]) for r in read] == [r["event_id"] for r in records]
    assert [r["quantity"] for r in read] == list(range(5))
    assert data.count(data[-16:]) == 1 + 5  # one sync marker after the header, one per block


def test_uppercase_event_ids_are_canonicalized() -> None:
    event_id = str(uuid.uuid4())
    assert SHARED.parse(CATALOGUE.encode(SHARED_TICKET_ORDER, record(event_id=event_id.upper()))).event_id == event_id


def consent_value() -> bytes:
    return CATALOGUE.encode(CONSENT, {
        "event_id": str(uuid.uuid4()), "event_type": "consent.granted", "schema_version": 1,
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC), "received_at": datetime(2026, 1, 1, tzinfo=UTC),
        "venue_id": "opera-lyon", "source_system": "crm",
        "subject": {"email": "a@b.fr", "customer_id": None, "postal_code": None},
        "purpose": "research", "recipients": [], "recipient_list_version": "", "proof_ref": None,
    })


GOOD = CATALOGUE.encode(SHARED_TICKET_ORDER, record())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "tombstone"),
        (b"\x00\x00", "truncated"),
        (b"junk!!", "bad_magic"),
        (b"\x00\x00\x00\x99\x99" + GOOD[5:], "unexpected_schema"),
        (GOOD[:30], "corrupt_body"),
        (CATALOGUE.encode(SHARED_TICKET_ORDER, record(event_id=str(uuid.uuid4()))).replace(b"-", b"_", 1),
         "bad_uuid"),
        (CATALOGUE.encode(SHARED_TICKET_ORDER, record(occurred_at=datetime(2350, 1, 1, tzinfo=UTC))),
         "timestamp_out_of_range"),
    ],
)
def test_parse_rejects(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        SHARED.parse(value)
    assert info.value.reason == reason


def test_parse_rejects_other_schemas() -> None:
    with pytest.raises(InvalidMessage) as info:
        SHARED.parse(consent_value())
    assert info.value.reason == "unexpected_schema"


# --- recent ids -------------------------------------------------------------------------------


def test_recent_ids_answer_above_the_floor_only() -> None:
    from sinks.recent import MINUTE_US, RecentIds

    recent = RecentIds(max_ids=3)
    assert recent.known("a", 10) is None  # no watermark yet: ask the store
    recent.reset(watermark_us=100)
    assert recent.known("a", 100) is None  # at or below the watermark: ask the store
    assert recent.known("a", 101) is False
    recent.add([("a", 101), ("b", 102), ("old", 50)])
    assert recent.known("a", 101) is True and recent.known("b", 102) is True and len(recent) == 2
    recent.add([("c", MINUTE_US + 5), ("d", 2 * MINUTE_US + 5)])  # 4 ids > 3: the oldest minute goes
    assert recent.floor == MINUTE_US - 1 and len(recent) == 2
    assert recent.known("a", 101) is None and recent.known("c", MINUTE_US + 5) is True
    recent.invalidate()
    assert recent.known("c", MINUTE_US + 5) is None


def test_parse_keeps_received_at_for_the_end_to_end_latency() -> None:
    rec = record()
    row = SHARED.parse(CATALOGUE.encode(SHARED_TICKET_ORDER, rec))
    assert row.received_at_us == int(rec["received_at"].timestamp() * 1_000_000)


# --- e-mail clicks: a second table built by the same rules ------------------------------------------------


def test_email_clicks_table_only_for_partners_sharing_clicks_and_never_the_link_or_message() -> None:
    from sinks.ddl import create_table_sql
    from sinks.tables import EMAIL_CLICKS

    agreements = load_agreements(DEFAULT_AGREEMENTS)
    assert partner_tables("reseau-danse", agreements).clicks is None
    obs = partner_tables("observatoire", agreements)
    assert obs.clicks is not None
    assert [t.name for t in obs.all] == ["ticket_orders", EMAIL_CLICKS, "campaign_events", "ticket_scans", "ad_spend",
                                         "erasures"], "one table per kind its agreement covers, no web or content"
    assert obs.clicks.names == ("event_id", "event_type", "occurred_at", "received_at", "venue_id", "agreement_id",
                                "purpose", "subject_pseudonym", "pseudonym_key_version", "campaign_id",
                                "production_id", RETAIN_UNTIL)
    assert "campaign_id" not in obs.orders.names, "click fields stay in the click table"
    # same sort key, partitions, TTL, indexes and retention default as the orders
    ddl, orders_ddl = create_table_sql(obs.clicks), create_table_sql(obs.orders)
    for clause in ("ORDER BY (purpose, venue_id, occurred_at, event_id)", "PARTITION BY toYYYYMM(occurred_at)",
                   "TTL retain_until DELETE", "subject_bloom", "event_id_bloom", obs.retention.default_sql()):
        assert clause in ddl and clause in orders_ddl
    for never in ("link_url", "message_id", "campaign_name", "list_id", "subject`", "email`"):
        assert never not in ddl


def test_click_columns_follow_the_agreements_that_share_clicks() -> None:
    both = ["ticket.order_placed", "campaign.email_clicked"]
    wide = partner_tables("p1", [agreement(event_types=both, allowed_fields=["quantity", "campaign_id",
                                                                              "production_id"])])
    assert wide.clicks is not None and {"campaign_id", "production_id"} <= set(wide.clicks.names)
    assert "production_id" in wide.orders.names and "quantity" not in wide.clicks.names
    only_clicks = partner_tables("p1", [agreement(event_types=["campaign.email_clicked"],
                                                  allowed_fields=["campaign_id"]),
                                        agreement(id="dsa-b", allowed_fields=["quantity", "production_id"])])
    assert only_clicks.clicks is not None and "production_id" not in only_clicks.clicks.names
    assert "quantity" in only_clicks.orders.names and "campaign_id" not in only_clicks.orders.names


def test_click_records_take_the_fast_path_of_their_own_schema() -> None:
    from schemas.models import SHARED_EMAIL_CLICK

    clicks = SharedFormat(CATALOGUE, SHARED_EMAIL_CLICK)
    fields = {k: v for k, v in record(event_type="campaign.email_clicked", campaign_id="C-1").items()
              if k != "quantity"}
    value = CATALOGUE.encode(SHARED_EMAIL_CLICK, fields)
    row = clicks.parse(value)
    details = clicks.details(row)
    assert details is not None and details.subject_pseudonym == "a" * 64 and details.purpose == "research"
    with pytest.raises(InvalidMessage, match="is not"):
        SHARED.parse(value)  # an orders sink refuses a click (and the other way round)
