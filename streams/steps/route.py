"""Routing by data-sharing agreement, and to the venue's own store (pure).

For one decoded raw event, :func:`route` returns one :class:`Decision` per agreement that
covers the event's venue and type and is valid on the event's date: either "shared" with the
record to produce to ``partner.<partner>.<stream>``, or "dropped" with the consent reason.
An agreement with several purposes shares the event once, for the first consented purpose.
A kind that describes no person (ad spend) needs no consent: it is shared under every agreement
that covers it, with the reason ``no_personal_data``. No matching agreement yields a single
"no_agreement" decision (nothing is routed).

:func:`own_store` is the venue's own decision for the same event (outcome ``venue_store``): the
record for ``venue.<venue>.<stream>`` pseudonymized in the venue's own domain, every field
kept; a page view or content interaction of a person without a current consent for any purpose
becomes consent-exempt audience measurement on ``venue.<venue>.measurement`` instead (reason
``exempt_measurement``), which no partner decision ever carries.

Shareable types and their streams come from :mod:`schemas.kinds` (:data:`STREAM_OF_TYPE`); each
is shared as its partner-facing schema, carried in :attr:`Decision.schema`. :func:`shareable`
says whether a decoded raw event is one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.topics import SHARED_STREAMS, VENUE_STREAMS, partner_topic, venue_topic
from schemas.agreements import Agreement
from schemas.kinds import (
    KIND_OF_TYPE,
    KIND_STREAMS,
    MEASURED_TYPES,
    MEASUREMENT_PURPOSE,
    MEASUREMENT_SCHEMA,
    MEASUREMENT_STREAM,
    OWN_PURPOSE,
    STREAM_OF_TYPE,
    measurement_agreement_id,
    own_agreement_id,
    venue_domain,
)
from schemas.models import EVENT_SCHEMAS, SHARED_TICKET_ORDER
from schemas.sharing import SHARED_SCHEMA_OF_TYPE
from streams.steps.consent import DEFAULT_TTL, LedgerEntry, consented_purpose, decide
from streams.steps.pseudonymize import measurement_record, project, share_record

assert KIND_STREAMS == SHARED_STREAMS and (*SHARED_STREAMS, MEASUREMENT_STREAM) == VENUE_STREAMS


def shareable(schema_name: str, event_type: str) -> bool:
    """True for a raw event (its schema's full name, its event type) that agreements can share."""
    return event_type in STREAM_OF_TYPE and EVENT_SCHEMAS.get(event_type) == schema_name


@dataclass(frozen=True)
class Decision:
    outcome: str  # shared | dropped | no_agreement | venue_store
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
        if not KIND_OF_TYPE[event_type].personal:  # describes no one: the agreement alone decides
            purpose = agreement.purposes[0].value
            shared = share_record(record, agreement, purpose, key_version=key_version, key=key,
                                  schema=SHARED_SCHEMA_OF_TYPE[event_type])
            decisions.append(Decision("shared", "no_personal_data", agreement.id, agreement.partner, purpose,
                                      partner_topic(agreement.partner, STREAM_OF_TYPE[event_type]), shared,
                                      SHARED_SCHEMA_OF_TYPE[event_type]))
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


def own_store(record: dict[str, Any], ledger: LedgerEntry | None, *, key_version: int, key: bytes,
              ttls: Mapping[str, timedelta] | None = None) -> Decision:
    """The venue's own-store decision for a shareable ``record`` (see module doc)."""
    venue, event_type = record["venue_id"], record["event_type"]
    purpose = OWN_PURPOSE
    if event_type in MEASURED_TYPES:
        consented = consented_purpose(ledger, at=record["occurred_at"], ttls=ttls or {})
        if consented is None:
            measured = measurement_record(record, key_version=key_version, key=key)
            return Decision("venue_store", "exempt_measurement", measurement_agreement_id(venue), None,
                            MEASUREMENT_PURPOSE, venue_topic(venue, MEASUREMENT_STREAM), measured, MEASUREMENT_SCHEMA)
        purpose = consented
    schema = SHARED_SCHEMA_OF_TYPE[event_type]
    kept = project(record, schema=schema, agreement_id=own_agreement_id(venue), purpose=purpose,
                   domain=venue_domain(venue), allowed=None, key_version=key_version, key=key, anonymous=True)
    reason = "own_use" if purpose == OWN_PURPOSE else "consented"
    return Decision("venue_store", reason, own_agreement_id(venue), None, purpose,
                    venue_topic(venue, STREAM_OF_TYPE[event_type]), kept, schema)
