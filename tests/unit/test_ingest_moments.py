"""Dates and times an event may carry: within what every store holds (1900-01-01 .. 2299-12-31
UTC), else a 422 naming the field, never a 500 (an offset pushing a moment past Python's range
raised OverflowError) and never a 202 the partner sinks then dead-letter."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from producers.ingest import EventRejected, prepare

ORDER: dict[str, Any] = {
    "type": "ticket.order_placed", "occurred_at": "2026-11-01T10:00:00+01:00",
    "customer": {"email": "lea.martin@exemple.fr"}, "order_id": "OPE-1", "production": "Tosca",
    "performance_id": "p1", "performance_at": "2026-12-01T20:00:00Z", "discipline": "opera", "tariff": "plein",
    "channel": "web", "quantity": 2, "amount_minor": 9000}
SPEND: dict[str, Any] = {"type": "ads.spend_reported", "occurred_at": "2026-11-01T10:00:00Z", "day": "2026-10-31",
                         "platform": "meta", "account_id": "a", "campaign_id": "c", "spend_minor": 5,
                         "currency": "EUR"}


def _prepare(payload: dict[str, Any]) -> None:
    prepare(payload, venue_id="opera-lyon", subject_key=b"k" * 32, fallback_id=uuid.uuid4(), auth="t")


@pytest.mark.parametrize(("payload", "field"), [
    ({**ORDER, "occurred_at": "0001-01-01T00:30:00+01:00"}, "occurred_at"),  # before year 1 in UTC
    ({**ORDER, "performance_at": "9999-12-31T23:30:00-01:00"}, "performance_at"),  # after year 9999 in UTC
    ({**ORDER, "occurred_at": "1899-12-31T23:59:59Z"}, "occurred_at"),
    ({**ORDER, "performance_at": "2300-01-01T00:00:00Z"}, "performance_at"),
    ({**SPEND, "day": "0001-01-01"}, "day"),
    ({**SPEND, "day": "2300-01-01"}, "day"),
])
def test_a_moment_outside_what_the_stores_hold_is_refused_naming_its_field(payload: dict[str, Any],
                                                                          field: str) -> None:
    with pytest.raises(EventRejected) as err:
        _prepare(payload)
    (error,) = err.value.errors
    assert error["field"] == field and "1900-01-01" in error["message"] and "2299-12-31" in error["message"]


@pytest.mark.parametrize("payload", [
    {**ORDER, "occurred_at": "1900-01-01T00:00:00Z"}, {**ORDER, "performance_at": "2299-12-31T23:59:59.999999Z"},
    {**ORDER, "occurred_at": "1900-01-01T01:00:00+01:00", "performance_at": "2299-12-31T10:00:00-13:59"},
    {**SPEND, "day": "1900-01-01"},
])
def test_moments_at_the_bounds_are_accepted(payload: dict[str, Any]) -> None:
    _prepare(payload)
