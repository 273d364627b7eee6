"""Shared by several test modules (tests never import each other)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas import CATALOGUE
from schemas.agreements import Agreement
from schemas.models import CONSENT, TICKET_ORDER
from streams.processor import Processor
from streams.steps.consent import LedgerEntry

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


KEYS = {1: b"a" * 32, 2: b"b" * 32}


def agreement(partner: str = "p1", purposes: tuple[str, ...] = ("marketing",), **kw: Any) -> Agreement:
    return Agreement.model_validate({
        "id": f"dsa-{partner}", "provider_venues": ["v1"], "partner": partner, "purposes": list(purposes),
        "event_types": ["ticket.order_placed"], "allowed_fields": ["production", "departement"],
        "retention_days": 30, "valid_from": date(2026, 1, 1), "valid_until": date(2027, 1, 1), **kw})


def subject(email: str) -> dict[str, Any]:
    return {"email": email, "customer_id": "CUST-42", "postal_code": "69003"}


def consent(email: str, kind: str, *, days_ago: int = 1, recipients: list[str] | None = None,
            purpose: str = "marketing") -> bytes:
    at = NOW - timedelta(days=days_ago)
    return CATALOGUE.encode(CONSENT, {
        "event_id": str(uuid.uuid4()), "event_type": f"consent.{kind}", "occurred_at": at, "received_at": at,
        "venue_id": "v1", "source_system": "t", "subject": subject(email), "purpose": purpose,
        "recipients": recipients if recipients is not None else ["p1", "p2"], "recipient_list_version": "1",
        "proof_ref": None})


def order(email: str) -> bytes:
    return CATALOGUE.encode(TICKET_ORDER, {
        "event_id": str(uuid.uuid4()), "event_type": "ticket.order_placed", "occurred_at": NOW, "received_at": NOW,
        "venue_id": "v1", "source_system": "t", "subject": subject(email), "order_id": "O1", "production": "Tosca",
        "performance_id": "P1", "performance_at": NOW, "discipline": "opera", "tariff": "plein", "channel": "web",
        "quantity": 1, "amount_minor": 100, "currency": "EUR"})


class Ledger(dict[str, LedgerEntry]):
    def feed(self, proc: Processor, value: bytes, key: str = "s1") -> Any:
        result = proc.handle(value, key.encode(), "raw.v1", self.get)
        if result.ledger_update is not None:
            self[key] = result.ledger_update
        return result
