"""``SharedFormat.parse_many`` (the bulk pass) gives exactly what ``parse`` gives record by record:
the same rows, or the same first error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidMessage
from schemas.codec import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from sinks.framing import SharedFormat, SharedRow

SHARED = SharedFormat()
AT = datetime(2026, 6, 1, 12, tzinfo=UTC)


def value(i: int, **overrides: Any) -> bytes:
    at = AT - timedelta(seconds=i)
    record = {
        "event_id": str(uuid.uuid4()), "event_type": "ticket.order_placed", "occurred_at": at,
        "received_at": at + timedelta(milliseconds=250), "venue_id": "opera-lyon", "agreement_id": "dsa-a",
        "purpose": "cross_venue_analytics", "subject_pseudonym": f"{i:064x}", "pseudonym_key_version": 1,
        "quantity": 1 + i % 4, "amount_minor": 4400, "currency": "EUR",
    }
    record.update(overrides)
    return CATALOGUE.encode(SHARED_TICKET_ORDER, record)


VALUES = [value(i) for i in range(40)]


def one_by_one(values: list[bytes | None]) -> list[SharedRow] | tuple[str, str]:
    try:
        return [SHARED.parse(v) for v in values]
    except InvalidMessage as exc:
        return (exc.stage, exc.reason)


def in_bulk(values: list[bytes | None]) -> list[SharedRow] | tuple[str, str]:
    try:
        return SHARED.parse_many(values)
    except InvalidMessage as exc:
        return (exc.stage, exc.reason)


def test_valid_records_are_read_in_bulk_exactly_as_one_by_one() -> None:
    assert SHARED._bulk(VALUES) is not None  # the vectorized pass, not the fallback
    rows = SHARED.parse_many(VALUES)
    assert rows == [SHARED.parse(v) for v in VALUES]
    assert all(type(r) is SharedRow for r in rows) and rows[3].value is VALUES[3]


def test_a_batch_of_empty_event_types_is_read_in_bulk() -> None:
    values = [value(i, event_type="") for i in range(12)]
    assert SHARED._bulk(values) is not None
    assert SHARED.parse_many(values) == [SHARED.parse(v) for v in values]


@pytest.mark.parametrize(
    "odd",
    [
        value(1, event_id=str(uuid.uuid4()).upper()),  # canonicalized in bulk too
        value(1, event_type="ticket.ordér_placed"),  # non-ASCII event_type: record by record
        value(1, event_type="t" * 70),  # a two-byte length
        value(1, occurred_at=datetime(1901, 1, 1, tzinfo=UTC)),  # negative timestamps
        value(1, occurred_at=datetime(2299, 12, 31, tzinfo=UTC)),
    ],
)
def test_unusual_but_valid_records_give_the_same_rows(odd: bytes) -> None:
    values = [*VALUES[:10], odd, *VALUES[10:20]]
    assert SHARED.parse_many(values) == [SHARED.parse(v) for v in values]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (None, "tombstone"),
        (b"\x00\x00", "truncated"),
        (b"\x01" + VALUES[0][1:], "bad_magic"),
        (b"\x00\x00\x00\x99\x99" + VALUES[0][5:], "unexpected_schema"),
        (VALUES[0][:44], "corrupt_body"),
        (VALUES[0][:60], "corrupt_body"),
        (VALUES[0].replace(b"-", b"_", 1), "bad_uuid"),
        (value(1, occurred_at=datetime(2350, 1, 1, tzinfo=UTC)), "timestamp_out_of_range"),
    ],
)
def test_an_invalid_record_raises_what_parse_raises(bad: bytes | None, reason: str) -> None:
    values = [*VALUES[:10], bad, *VALUES[10:20]]
    with pytest.raises(InvalidMessage) as info:
        SHARED.parse_many(values)
    assert info.value.reason == reason
    assert in_bulk(values) == one_by_one(values)


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 19), st.integers(0, 80), st.integers(0, 255)), max_size=3),
       cut=st.none() | st.tuples(st.integers(0, 19), st.integers(0, 90)))
def test_corrupted_batches_give_the_same_outcome(edits: list[tuple[int, int, int]],
                                                 cut: tuple[int, int] | None) -> None:
    batch = [bytearray(v) for v in VALUES[:20]]
    for row, at, byte in edits:
        if at < len(batch[row]):
            batch[row][at] = byte
    if cut is not None:
        batch[cut[0]] = batch[cut[0]][: cut[1]]
    values: list[bytes | None] = [bytes(v) for v in batch]
    assert in_bulk(values) == one_by_one(values)
