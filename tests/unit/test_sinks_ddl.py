"""Pure sink logic: DDL from the Avro schema, rows, batches, dedup helpers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from core.errors import ConfigError, InvalidMessage
from schemas.agreements import Agreement
from schemas.codec import CATALOGUE
from schemas.models import CONSENT, SHARED_TICKET_ORDER
from sinks import ddl
from sinks.base import Backoff, Batch, first_occurrences, insert_token
from sinks.records import decode_row
from sinks.tables import partner_tables


def shared_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "ticket.order_placed",
        "occurred_at": datetime(2024, 3, 9, 20, 15, 1, 250, tzinfo=UTC),
        "received_at": datetime(2024, 3, 9, 20, 15, 2, tzinfo=UTC),
        "venue_id": "opera-lyon",
        "agreement_id": "agr-2024-001",
        "purpose": "cross_venue_analytics",
        "subject_pseudonym": "a" * 64,
        "pseudonym_key_version": 3,
        "postal_code": None,
        "order_id": "ord-1",
        "production": "Carmen",
        "performance_id": "perf-9",
        "performance_at": datetime(2024, 4, 1, 18, 0, tzinfo=UTC),
        "discipline": "opera",
        "tariff": "plein",
        "channel": "web",
        "quantity": 2,
        "amount_minor": 9000,
        "currency": "EUR",
    }
    record.update(overrides)
    return record


def column(name: str) -> ddl.Column:
    return next(c for c in ddl.COLUMNS if c.name == name)


# --- database names --------------------------------------------------------------------------


@pytest.mark.parametrize(("partner", "db"), [("opera-lyon", "opera_lyon"), ("CNM_2", "cnm_2"), ("x1", "x1")])
def test_database_name_sanitizes(partner: str, db: str) -> None:
    assert ddl.database_name(partner) == db


@pytest.mark.parametrize("partner", ["", "a.b", "drop table;", "é", "a b"])
def test_database_name_rejects_other_characters(partner: str) -> None:
    with pytest.raises(ConfigError):
        ddl.database_name(partner)


# --- column types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ch_type"),
    [
        ("event_id", "UUID"),
        ("occurred_at", "DateTime64(6, 'UTC')"),
        ("received_at", "DateTime64(6, 'UTC')"),
        ("performance_at", "Nullable(DateTime64(6, 'UTC'))"),
        ("pseudonym_key_version", "Int32"),
        ("quantity", "Nullable(Int32)"),
        ("amount_minor", "Nullable(Int64)"),
        ("subject_pseudonym", "String"),
        ("postal_code", "Nullable(String)"),
        ("venue_id", "LowCardinality(String)"),
        ("event_type", "LowCardinality(String)"),
        ("agreement_id", "LowCardinality(String)"),
        ("purpose", "LowCardinality(String)"),
        ("discipline", "LowCardinality(Nullable(String))"),
        ("currency", "LowCardinality(Nullable(String))"),
    ],
)
def test_column_types_follow_the_avro_schema(name: str, ch_type: str) -> None:
    assert column(name).ch_type == ch_type


def test_columns_cover_every_schema_field_in_order() -> None:
    fields = [f["name"] for f in CATALOGUE.entry(SHARED_TICKET_ORDER).raw["fields"]]
    assert [c.name for c in ddl.COLUMNS] == fields


def agreement(**overrides: Any) -> Agreement:
    fields: dict[str, Any] = {
        "id": "dsa-test", "provider_venues": ["opera-lyon"], "partner": "opera-lyon", "purposes": ["research"],
        "event_types": ["ticket.order_placed"], "allowed_fields": ["quantity"], "retention_days": 30,
        "valid_from": "2026-01-01", "valid_until": "2027-01-01",
    }
    return Agreement.model_validate({**fields, **overrides})


def test_create_table_sql() -> None:
    spec = partner_tables("opera-lyon", [agreement()]).orders
    sql = ddl.create_table_sql(spec)
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `opera_lyon`.`ticket_orders`")
    assert "ENGINE = ReplacingMergeTree" in sql
    assert "PARTITION BY toYYYYMM(occurred_at)" in sql
    assert "ORDER BY (purpose, venue_id, occurred_at, event_id)" in sql
    assert "TTL retain_until DELETE" in sql
    assert "`quantity` Nullable(Int32)" in sql and "discipline" not in sql
    assert ddl.create_database_sql("opera_lyon") == "CREATE DATABASE IF NOT EXISTS `opera_lyon`"


def test_add_missing_columns_only_for_absent_ones() -> None:
    spec = partner_tables("opera-lyon", [agreement(allowed_fields=["quantity", "currency"])]).orders
    assert ddl.add_missing_columns_sql(spec, spec.names) == []
    statements = ddl.add_missing_columns_sql(spec, set(spec.names) - {"currency", "quantity"})
    assert statements == [
        "ALTER TABLE `opera_lyon`.`ticket_orders` ADD COLUMN IF NOT EXISTS `quantity` Nullable(Int32)",
        "ALTER TABLE `opera_lyon`.`ticket_orders` ADD COLUMN IF NOT EXISTS `currency` LowCardinality(Nullable(String))",
    ]


def test_a_missing_sort_key_column_extends_the_key_in_the_same_alter() -> None:
    from sinks import audit

    statements = ddl.add_missing_columns_sql(audit.SPEC, set(audit.SPEC.names) - {"kafka_line", "details"})
    assert statements == [
        "ALTER TABLE `audit`.`decisions` ADD COLUMN IF NOT EXISTS `details` String",
        "ALTER TABLE `audit`.`decisions` ADD COLUMN IF NOT EXISTS `kafka_line` UInt16, MODIFY ORDER BY "
        "(venue_id, partner, decided_at, kafka_partition, kafka_offset, kafka_line)",
    ]


def test_evolved_schema_field_with_default_gets_a_sql_default() -> None:
    evolved = dict(CATALOGUE.entry(SHARED_TICKET_ORDER).raw)
    evolved["fields"] = [*evolved["fields"], {"name": "seat_zone", "type": "string", "default": "it's"}]
    cols = ddl.columns_from_avro(evolved)
    wide = Agreement.model_construct(**(agreement().model_dump() | {"allowed_fields": ["quantity", "seat_zone"]}))
    spec = partner_tables("opera-lyon", [wide], cols).orders
    (statement,) = ddl.add_missing_columns_sql(spec, set(spec.names) - {"seat_zone"})
    assert statement.endswith("`seat_zone` String DEFAULT 'it\\'s'")


@pytest.mark.parametrize(
    "avro",
    ["bytes", {"type": "array", "items": "string"}, ["null", "string", "int"], {"type": "record", "fields": []}],
)
def test_unsupported_avro_types_are_rejected(avro: Any) -> None:
    with pytest.raises(ValueError, match="field 'x'"):
        ddl.column_from_field({"name": "x", "type": avro})


# --- rows ------------------------------------------------------------------------------------


def test_row_from_decoded_record_is_json_ready() -> None:
    record = shared_record()
    _, decoded = CATALOGUE.decode(CATALOGUE.encode(SHARED_TICKET_ORDER, record))
    row = ddl.row_from_record(decoded)
    assert row["event_id"] == record["event_id"]
    assert row["occurred_at"] == "2024-03-09 20:15:01.000250"
    assert row["performance_at"] == "2024-04-01 18:00:00.000000"
    assert row["postal_code"] is None
    assert row["quantity"] == 2
    assert list(row) == [c.name for c in ddl.COLUMNS]
    assert json.loads(json.dumps(row)) == row


def test_row_timestamps_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=2))
    row = ddl.row_from_record(shared_record(occurred_at=datetime(2024, 6, 1, 20, 0, tzinfo=paris)))
    assert row["occurred_at"] == "2024-06-01 18:00:00.000000"
    naive = ddl.row_from_record(shared_record(occurred_at=datetime(2024, 6, 1, 20, 0)))
    assert naive["occurred_at"] == "2024-06-01 20:00:00.000000"
    micros = ddl.row_from_record(shared_record(occurred_at=1_700_000_000_123_456))
    assert micros["occurred_at"] == "2023-11-14 22:13:20.123456"


def test_row_accepts_uuid_objects() -> None:
    event_id = uuid.uuid4()
    assert ddl.row_from_record(shared_record(event_id=event_id))["event_id"] == str(event_id)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"event_id": None}, "missing_field"),
        ({"venue_id": None}, "missing_field"),
        ({"event_id": "not-a-uuid"}, "bad_uuid"),
        ({"occurred_at": datetime(2350, 1, 1, tzinfo=UTC)}, "timestamp_out_of_range"),
        ({"occurred_at": "2024-01-01"}, "bad_timestamp"),
        ({"quantity": [1]}, "bad_value"),
    ],
)
def test_unstorable_records_are_invalid_messages(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        ddl.row_from_record(shared_record(**overrides))
    assert (info.value.stage, info.value.reason) == ("row", reason)


def test_json_each_row() -> None:
    body = ddl.to_json_each_row([{"a": 1, "b": "é"}, {"a": None, "b": "x"}])
    assert body == '{"a":1,"b":"é"}\n{"a":null,"b":"x"}\n'.encode()
    assert ddl.parse_json_compact(b'[1, "x", null]\n\n[2, "y", 3]\n') == [(1, "x", None), (2, "y", 3)]


# --- decode_row ------------------------------------------------------------------------------


def test_decode_row_round_trip() -> None:
    record = shared_record()
    assert decode_row(CATALOGUE.encode(SHARED_TICKET_ORDER, record))["event_id"] == record["event_id"]


@pytest.mark.parametrize(
    ("value", "reason"), [(None, "tombstone"), (b"\x00\x00", "truncated"), (b"junk!", "bad_magic")]
)
def test_decode_row_rejects_garbage(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        decode_row(value)
    assert info.value.reason == reason


def test_decode_row_rejects_other_schemas() -> None:
    consent = {
        "event_id": str(uuid.uuid4()),
        "event_type": "consent.granted",
        "schema_version": 1,
        "occurred_at": datetime(2024, 1, 1, tzinfo=UTC),
        "received_at": datetime(2024, 1, 1, tzinfo=UTC),
        "venue_id": "opera-lyon",
        "source_system": "crm",
        "subject": {"email": "a@b.fr", "customer_id": None, "postal_code": None},
        "purpose": "research",
        "recipients": [],
        "recipient_list_version": "",
        "proof_ref": None,
    }
    value = CATALOGUE.encode(CONSENT, consent)
    with pytest.raises(InvalidMessage) as info:
        decode_row(value)
    assert info.value.reason == "unexpected_schema"


# --- Batch -----------------------------------------------------------------------------------


def test_batch_ready_by_size() -> None:
    batch: Batch[dict[str, str]] = Batch("partner.p.ticketing", 2, max_messages=3, max_age_s=60)
    assert not batch.ready(0.0)
    batch.add(10, {"event_id": "a"}, now=0.0)
    batch.add(11, None, now=0.0)
    assert not batch.ready(0.0)
    batch.add(14, {"event_id": "b"}, now=0.0)
    assert batch.ready(0.0)
    assert (batch.min_offset, batch.max_offset, len(batch), len(batch.items), batch.offsets) == (10, 14, 3, 2, [10, 14])
    assert batch.token() == "partner.p.ticketing-2-10-14"


def test_batch_ready_by_age_of_first_message() -> None:
    batch = Batch("t", 0, max_messages=100, max_age_s=1.0)
    batch.add(0, {"event_id": "a"}, now=5.0)
    batch.add(1, {"event_id": "b"}, now=5.9)
    assert batch.deadline() == 6.0
    assert not batch.ready(5.99)
    assert batch.ready(6.0)


def test_batch_rejects_offsets_going_backwards() -> None:
    batch = Batch("t", 0, max_messages=100, max_age_s=1.0)
    batch.add(5, None, now=0.0)
    with pytest.raises(ValueError, match="offset 5"):
        batch.add(5, None, now=0.0)


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(7)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    backoff.reset()
    assert backoff.next() == pytest.approx(0.2)


# --- dedup helpers ---------------------------------------------------------------------------


def test_first_occurrences_drops_stored_and_repeated_keys() -> None:
    assert first_occurrences(["a", "b", "a", "c"], {"c"}) == [0, 1]


def test_insert_token_depends_on_content() -> None:
    one = ["a", "b"]
    assert insert_token("t-0-0-1", one) == insert_token("t-0-0-1", list(one))
    assert insert_token("t-0-0-1", one[:1]) != insert_token("t-0-0-1", one)
    assert insert_token("t-0-0-1", one).startswith("t-0-0-1-")
