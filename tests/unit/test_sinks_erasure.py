"""Pure parts of erasure (command parsing, the rows a command covers) and of the audit sink."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from core.errors import InvalidMessage
from schemas.codec import CATALOGUE
from schemas.models import ERASURE_COMMAND, SHARED_TICKET_ORDER
from sinks import audit
from sinks.erasure import ErasureCommand, audit_value, micros, parse_command, suppressed, where, where_any
from sinks.framing import Details

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def command_record(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "command_id": str(uuid.uuid4()), "partner": "p1", "venue_id": "opera-lyon", "subject_pseudonym": "s" * 64,
        "pseudonym_key_version": 1, "purposes": ["marketing"], "reason": "consent_withdrawn",
        "occurred_at": T0, "issued_at": datetime(2026, 5, 1, 12, 0, 1, tzinfo=UTC),
    }
    out.update(overrides)
    return out


def row(at: datetime, purpose: str = "marketing", subject: str = "s" * 64,
        venue: str = "opera-lyon") -> tuple[int, Details]:
    return micros(at), Details(venue, "dsa", purpose, subject)


def test_parse_command() -> None:
    rec = command_record()
    cmd = parse_command(CATALOGUE.encode(ERASURE_COMMAND, rec), "p1")
    assert cmd == ErasureCommand(rec["command_id"], "p1", "opera-lyon", "s" * 64, ("marketing",),
                                 "consent_withdrawn", micros(T0), micros(rec["issued_at"]))


def test_a_command_for_another_partner_or_of_another_schema_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="wrong_partner"):
        parse_command(CATALOGUE.encode(ERASURE_COMMAND, command_record(partner="p2")), "p1")
    shared = CATALOGUE.encode(SHARED_TICKET_ORDER, {
        "event_id": str(uuid.uuid4()), "event_type": "t", "occurred_at": T0, "received_at": T0, "venue_id": "v",
        "agreement_id": "a", "purpose": "p", "subject_pseudonym": "s", "pseudonym_key_version": 1})
    with pytest.raises(InvalidMessage, match="unexpected_schema"):
        parse_command(shared, "p1")
    with pytest.raises(InvalidMessage, match="tombstone"):
        parse_command(None, "p1")


def test_where_names_purposes_only_when_the_command_does() -> None:
    cmd = parse_command(CATALOGUE.encode(ERASURE_COMMAND, command_record(purposes=[])), "p1")
    clause, params = where(cmd)
    assert "purpose" not in clause and params == {"s": "s" * 64, "v": "opera-lyon", "t": micros(T0)}
    clause, params = where(cmd.__class__(**{**cmd.__dict__, "purposes": ("a", "b")}))
    assert clause.endswith("AND purpose IN {p:Array(String)}") and params["p"] == ["a", "b"]


def test_where_any_ors_the_clauses_with_numbered_parameters() -> None:
    one = parse_command(CATALOGUE.encode(ERASURE_COMMAND, command_record(purposes=[])), "p1")
    two = one.__class__(**{**one.__dict__, "subject_pseudonym": "t" * 64, "purposes": ("a",)})
    clause, params = where_any([one, two], first=3)
    assert clause == f"({where(one, 3)[0]}) OR ({where(two, 4)[0]})"
    assert params == {"s3": "s" * 64, "v3": "opera-lyon", "t3": micros(T0),
                      "s4": "t" * 64, "v4": "opera-lyon", "t4": micros(T0), "p4": ["a"]}
    assert where_any([]) == ("0", {})  # matches nothing


def test_tombstones_cover_older_rows_of_the_subject_venue_and_purposes() -> None:
    index = {("s" * 64, "opera-lyon"): [(frozenset({"marketing"}), micros(T0))],
             ("t" * 64, "opera-lyon"): [(frozenset(), micros(T0))]}
    assert suppressed(*row(T0), index)
    assert not suppressed(*row(datetime(2026, 5, 1, 12, 0, 0, 1, tzinfo=UTC)), index)  # after the withdrawal
    assert not suppressed(*row(T0, purpose="research"), index)
    assert not suppressed(*row(T0, venue="chaillot"), index)
    assert suppressed(*row(T0, purpose="research", subject="t" * 64), index)  # no purposes: all


def test_audit_value_has_the_decision_shape_plus_erasure_facts() -> None:
    cmd = parse_command(CATALOGUE.encode(ERASURE_COMMAND, command_record()), "p1")
    value = json.loads(audit_value(cmd, 3, micros(T0) + 2_000_000))
    assert value["event_id"] == cmd.command_id and value["outcome"] == "erased" and value["rows_deleted"] == 3
    assert value["issued_at"] == "2026-05-01T12:00:01+00:00" and value["decided_at"] == "2026-05-01T12:00:02+00:00"
    assert set(value) >= {"event_id", "venue_id", "event_type", "outcome", "reason", "agreement_id", "partner",
                          "purpose", "decided_at"}
    row_ = audit.parse(audit_value(cmd, 3, micros(T0)))
    assert row_["rows_deleted"] == 3 and row_["issued_at"] == "2026-05-01 12:00:01.000000"
    assert json.loads(str(row_["details"])) == {"command_occurred_at": "2026-05-01T12:00:00+00:00"}


def test_audit_parse_of_a_worker_decision() -> None:
    decision = {"event_id": "e1", "venue_id": "chaillot", "event_type": "ticket.order_placed", "outcome": "shared",
                "reason": "granted", "agreement_id": "dsa", "partner": "observatoire", "purpose": "research",
                "decided_at": "2026-05-01T14:00:00+02:00"}
    parsed = audit.parse(json.dumps(decision).encode())
    assert parsed["decided_at"] == "2026-05-01 12:00:00.000000" and parsed["details"] == ""
    assert parsed["rows_deleted"] is None and parsed["issued_at"] is None
    dropped = audit.parse(json.dumps({**decision, "partner": None, "outcome": "no_agreement"}).encode())
    assert dropped["partner"] == ""


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "tombstone"), (b"{not json", "not_json"), (b"[1]", "not_an_object"), (b'{"outcome": "x"}', "missing_field"),
     (b'{"event_id": "e", "outcome": "x", "decided_at": "yesterday"}', "bad_timestamp"),
     (b'{"event_id": "e", "outcome": "x", "decided_at": "2026-01-01T00:00:00", "rows_deleted": -1}', "bad_value")],
)
def test_audit_parse_rejects(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        audit.parse(value)
    assert info.value.reason == reason
