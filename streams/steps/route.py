"""Routing by data-sharing agreement (pure).

For one decoded raw event, :func:`route` returns one :class:`Decision` per agreement that
covers the event's venue and type and is valid on the event's date: either "shared" with the
record to produce to ``partner.<partner>.<stream>``, or "dropped" with the consent reason.
An agreement with several purposes shares the event once, for the first consented purpose.
No matching agreement yields a single "no_agreement" decision (nothing is routed).

Shareable types and their partner stream: ``ticket.order_placed`` -> ``ticketing``,
``campaign.email_clicked`` -> ``campaign`` (:data:`STREAM_OF_TYPE`); each is shared as its
partner-facing schema (:data:`~schemas.sharing.SHARED_SCHEMA_OF_TYPE`), carried in
:attr:`Decision.schema`. :func:`shareable` says whether a decoded raw event is one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.topics import SHARED_STREAMS, partner_topic
from schemas.agreements import Agreement
from schemas.models import EVENT_SCHEMAS, SHARED_TICKET_ORDER
from schemas.sharing import SHARED_SCHEMA_OF_TYPE
from streams.steps.consent import DEFAULT_TTL, LedgerEntry, decide
from streams.steps.pseudonymize import share_record

STREAM_OF_TYPE = {"ticket.order_placed": "ticketing", "campaign.email_clicked": "campaign"}
assert set(STREAM_OF_TYPE) == set(SHARED_SCHEMA_OF_TYPE)
assert tuple(STREAM_OF_TYPE.values()) == SHARED_STREAMS


def shareable(schema_name: str, event_type: str) -> bool:
    """True for a raw event (its schema's full name, its event type) that agreements can share."""
    return event_type in STREAM_OF_TYPE and EVENT_SCHEMAS.get(event_type) == schema_name


@dataclass(frozen=True)
class Decision:
    outcome: str  # shared | dropped | no_agreement
    reason: str
    agreement_id: str | None = None
    partner: str | None = None
    purpose: str | None = None
    topic: str | None = None
    record: dict[str, Any] | None = None
    schema: str = SHARED_TICKET_ORDER  # the partner-facing schema of ``record``


def route(record: dict[str, Any], agreements: list[Agreement], ledger: LedgerEntry | None, *,
          key_version: int, key: bytes, ttls: Mapping[str, timedelta] | None = None) -> list[Decision]:
    venue, event_type, at = record["venue_id"], record["event_type"], record["occurred_at"]
    decisions: list[Decision] = []
    for agreement in agreements:
        if not (agreement.covers(venue, event_type) and agreement.active_on(at)):
            continue
        reason = "no_purpose"
        for purpose in agreement.purposes:
            verdict = decide(ledger, purpose=purpose.value, partner=agreement.partner, at=at,
                             ttl=(ttls or {}).get(purpose.value, DEFAULT_TTL))
            if verdict.allowed:
                schema = SHARED_SCHEMA_OF_TYPE[event_type]
                shared = share_record(record, agreement, purpose.value, key_version=key_version, key=key,
                                      schema=schema)
                decisions.append(Decision("shared", "granted", agreement.id, agreement.partner, purpose.value,
                                          partner_topic(agreement.partner, STREAM_OF_TYPE[event_type]), shared,
                                          schema))
                break
            reason = verdict.reason
        else:
            decisions.append(Decision("dropped", reason, agreement.id, agreement.partner,
                                      agreement.purposes[0].value))
    return decisions or [Decision("no_agreement", "no_agreement")]
