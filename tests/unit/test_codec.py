import contextlib
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidMessage
from schemas import CATALOGUE
from schemas.models import INCOMING, TICKET_ORDER, to_record

ORDER = {"type": "ticket.order_placed", "occurred_at": "2026-11-01T10:00:00+01:00",
         "customer": {"email": "Claire@Exemple.fr", "postal_code": "69003"}, "order_id": "o1",
         "production": "Tosca", "performance_id": "p1", "performance_at": "2026-12-01T20:00:00Z",
         "discipline": "opera", "tariff": "plein", "channel": "web", "quantity": 2, "amount_minor": 9000}


def _record() -> dict:
    event = INCOMING.validate_python(ORDER)
    _, record = to_record(event, venue_id="opera-lyon", received_at=datetime(2026, 11, 1, tzinfo=UTC),
                          fallback_id=uuid.UUID(int=1))
    return record


def test_roundtrip_confluent_framing() -> None:
    record = _record()
    data = CATALOGUE.encode(TICKET_ORDER, record)
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == CATALOGUE.entry(TICKET_ORDER).schema_id
    name, back = CATALOGUE.decode(data)
    assert name == TICKET_ORDER
    assert str(back["event_id"]) == record["event_id"]
    assert back["subject"]["email"] == "claire@exemple.fr"
    assert back["occurred_at"] == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def test_fallback_event_id_used_only_without_one() -> None:
    assert _record()["event_id"] == str(uuid.UUID(int=1))
    event = INCOMING.validate_python({**ORDER, "event_id": str(uuid.UUID(int=5))})
    _, record = to_record(event, venue_id="x", received_at=datetime.now(UTC), fallback_id=uuid.UUID(int=1))
    assert record["event_id"] == str(uuid.UUID(int=5))


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "truncated"), (b"\x01\x00\x00\x03\xe9", "bad_magic"), (b"\x00\x00\x00\x00\x07abc", "unknown_schema"),
    (b"\x00\x00\x00\x03\xe9\xff\xff\xff", "corrupt_body"),
])
def test_decode_rejects_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        CATALOGUE.decode(data)
    assert info.value.reason == reason
    assert info.value.stage == "decode"


def test_trailing_bytes_rejected() -> None:
    with pytest.raises(InvalidMessage) as info:
        CATALOGUE.decode(CATALOGUE.encode(TICKET_ORDER, _record()) + b"x")
    assert info.value.reason == "trailing_bytes"


def test_encode_mismatch_is_typed() -> None:
    with pytest.raises(InvalidMessage) as info:
        CATALOGUE.encode(TICKET_ORDER, {**_record(), "quantity": "two"})
    assert info.value.stage == "encode"


@given(st.binary(max_size=200))
def test_decode_never_raises_untyped(data: bytes) -> None:
    with contextlib.suppress(InvalidMessage):
        CATALOGUE.decode(data)


def test_validation_reports_field_paths() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        INCOMING.validate_python({**ORDER, "quantity": "deux", "customer": {}})
    locs = {".".join(str(p) for p in e["loc"][1:]) for e in info.value.errors()}
    assert "quantity" in locs
    assert "customer" in locs
