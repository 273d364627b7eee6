from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.steps.consent import apply_consent, decide

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def consent(kind: str, at: datetime, recipients: list[str] | None = None, purpose: str = "marketing") -> dict:
    return {"event_type": f"consent.{kind}", "occurred_at": at, "purpose": purpose,
            "recipients": recipients if recipients is not None else ["p1"], "recipient_list_version": "v1"}


def test_default_deny() -> None:
    assert decide(None, purpose="marketing", partner="p1", at=T0).reason == "no_record"
    entry, _ = apply_consent(None, consent("granted", T0, purpose="research"))
    assert decide(entry, purpose="marketing", partner="p1", at=T0).reason == "no_purpose"


def test_grant_then_withdraw() -> None:
    entry, _ = apply_consent(None, consent("granted", T0))
    assert decide(entry, purpose="marketing", partner="p1", at=T0 + timedelta(days=1)).allowed
    entry, changed = apply_consent(entry, consent("withdrawn", T0 + timedelta(days=2), []))
    assert changed
    assert decide(entry, purpose="marketing", partner="p1", at=T0 + timedelta(days=3)).reason == "withdrawn"


def test_partner_must_be_named() -> None:
    entry, _ = apply_consent(None, consent("granted", T0, ["p1"]))
    assert decide(entry, purpose="marketing", partner="p2", at=T0).reason == "recipient_not_named"


def test_expiry_after_13_months() -> None:
    entry, _ = apply_consent(None, consent("granted", T0))
    assert decide(entry, purpose="marketing", partner="p1", at=T0 + timedelta(days=394)).allowed
    assert decide(entry, purpose="marketing", partner="p1", at=T0 + timedelta(days=396)).reason == "expired"


@given(st.permutations([("granted", 0), ("withdrawn", 1), ("granted", 2), ("withdrawn", 3)]))
def test_out_of_order_resolved_by_event_time(order: list[tuple[str, int]]) -> None:
    entry = None
    for kind, day in order:
        entry, _ = apply_consent(entry, consent(kind, T0 + timedelta(days=day)))
    # the latest event (day 3) is a withdrawal, whatever the arrival order
    assert entry is not None
    assert decide(entry, purpose="marketing", partner="p1", at=T0 + timedelta(days=4)).reason == "withdrawn"
