"""Pseudonymization and projection of an event for one partner (pure).

The partner receives ``subject_pseudonym`` = HMAC-SHA256(key, domain, identifier) where the
identifier is the normalized e-mail (else the venue-scoped customer id) and the domain is the
agreement's (the partner's own unless a shared domain is named): two partners cannot join
their data on a person. Every direct identifier is removed; of the rest, only the
agreement's ``allowed_fields`` are kept (others are null).
"""

from __future__ import annotations

from typing import Any

from streams.agreements import PROJECTABLE, Agreement
from techne.identity import keyed_digest, subject_identifier


def pseudonym(key: bytes, domain: str, identifier: str) -> str:
    return keyed_digest(key, "pseudonym:" + domain, identifier)


def share_record(record: dict[str, Any], agreement: Agreement, purpose: str, *,
                 key_version: int, key: bytes) -> dict[str, Any]:
    """Build the SharedTicketOrder record a partner receives for ``record``."""
    subject = record["subject"]
    identifier = subject_identifier(subject, record["venue_id"])
    if identifier is None:
        raise ValueError("event has no subject identifier; it cannot be shared at person level")
    flat = {**record, "postal_code": subject.get("postal_code")}
    out: dict[str, Any] = {
        "event_id": str(record["event_id"]),
        "event_type": record["event_type"],
        "occurred_at": record["occurred_at"],
        "received_at": record["received_at"],
        "venue_id": record["venue_id"],
        "agreement_id": agreement.id,
        "purpose": purpose,
        "subject_pseudonym": pseudonym(key, agreement.domain, identifier),
        "pseudonym_key_version": key_version,
    }
    allowed = set(agreement.allowed_fields)
    for name in PROJECTABLE:
        out[name] = flat.get(name) if name in allowed else None
    return out
