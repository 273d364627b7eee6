"""An empty (or blank) string where a value is optional means "no value", as ticketing exports
write it: the field is absent, not a 422 (``"postal_code": ""`` refused the whole event); a
required field left empty is still refused naming it. True/false is a value of true/false fields only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from producers.ingest import EventRejected
from schemas.models import INCOMING, to_record
from tests.unit.test_ingest_moments import ORDER


def _record(payload: dict[str, Any]) -> dict[str, Any]:
    from datetime import UTC, datetime

    event = INCOMING.validate_python(payload)
    return to_record(event, venue_id="v", received_at=datetime.now(UTC), fallback_id=uuid.UUID(int=7))[1]


def test_blank_optional_values_are_absent() -> None:
    record = _record({**ORDER, "hall": "", "source_system": " ", "event_id": "",
                      "customer": {"email": "", "customer_id": "K1", "postal_code": "", "phone": "  ",
                                   "country_code": ""}})
    assert record["subject"]["customer_id"] == "K1"
    assert all(record["subject"].get(k) is None for k in ("email", "postal_code", "phone", "country_code"))
    assert record["hall"] is None and record["source_system"] == "unknown"
    assert record["event_id"] == str(uuid.UUID(int=7))


@pytest.mark.parametrize(("change", "field"), [({"order_id": ""}, "order_id"), ({"production": "  "}, "production"),
                                               ({"customer": {"email": "", "postal_code": "69003"}}, "customer")])
def test_a_required_value_left_empty_is_still_refused_naming_it(change: dict[str, Any], field: str) -> None:
    from producers.ingest import prepare

    with pytest.raises(EventRejected) as err:
        prepare({**ORDER, **change}, venue_id="opera-lyon", subject_key=b"k" * 32, fallback_id=uuid.uuid4(), auth="t")
    assert [e["field"] for e in err.value.errors] == [field]


@pytest.mark.parametrize(("change", "field"), [
    ({"quantity": True}, "quantity"), ({"amount_minor": False}, "amount_minor"),
    ({"performance_id": True}, "performance_id"),
])
def test_a_true_or_false_where_a_number_or_text_is_expected_is_refused(change: dict[str, Any], field: str) -> None:
    """``"quantity": true`` read as 1 ticket: a sender's mistake, not a number."""
    from producers.ingest import prepare

    with pytest.raises(EventRejected) as err:
        prepare({**ORDER, **change}, venue_id="opera-lyon", subject_key=b"k" * 32, fallback_id=uuid.uuid4(), auth="t")
    assert [e["field"] for e in err.value.errors] == [field]


def test_a_true_or_false_field_still_takes_booleans() -> None:
    opened = {"type": "campaign.email_opened", "occurred_at": "2026-11-01T10:00:00Z", "customer": {"email": "a@b.fr"},
              "campaign_id": "c1", "message_id": "m1", "machine_open": True}
    assert _record(opened)["machine_open"] is True
