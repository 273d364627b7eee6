"""Erasure commands that follow a withdrawal or an erasure request (pure).

When a person withdraws a consent that named partners, or asks for erasure, every partner
that may hold their data from that venue must erase it. :func:`erasure_commands` returns one
``ErasureCommand`` record per (partner, pseudonym domain, key version) concerned, addressed by
that partner's pseudonym (a partner never learns who the person is), with a deterministic
``command_id`` so that re-processing the same consent event re-emits the same commands.

Who is concerned:
* withdrawal / expiry of purpose P: partners named in the previous grant of P whose agreement
  with this venue covers P (only P's rows are erased);
* erasure request: every partner with an agreement covering this venue (all rows of the venue).
Emitting to a partner that received nothing is harmless: the sink deletes zero rows.

The venue's own store (``venue.<venue>.erasure``, addressed as ``venue:<venue>`` by the
venue's own pseudonym) gets a command on an erasure request (all its rows of the person) and
on a withdrawal or expiry of P (the rows it keeps under P: web and content of a person who had
consented); its own-use rows (orders, scans, campaigns: the venue's own relation with the
person) stay until an erasure request. Consent-exempt measurement rows carry no pseudonym of
the person (a yearly visitor key), so no command reaches them; they expire after 25 months.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.identity import subject_identifier
from core.topics import erasure_topic, venue_topic
from schemas.agreements import Agreement
from schemas.kinds import own_agreement_id, venue_domain
from streams.steps.consent import ERASURE_REQUEST_TYPES, LedgerEntry
from streams.steps.pseudonymize import pseudonym

COMMAND_NAMESPACE = uuid.UUID("0f3a8d3e-3c55-4f0e-9a63-5d1b8e2c7a40")


def is_erasure_request(event_type: str) -> bool:
    return event_type in ERASURE_REQUEST_TYPES


def erasure_commands(previous: LedgerEntry | None, event: Mapping[str, Any], agreements: list[Agreement], *,
                     keys: Mapping[int, bytes], issued_at: datetime) -> list[tuple[str, dict[str, Any]]]:
    """``[(topic, ErasureCommand record)]`` for a consent-type event already applied to the ledger.

    ``previous`` is the ledger entry *before* the event; ``keys`` maps every pseudonym key
    version still in use to its key (rows written under an older key are erased too).
    """
    venue = str(event["venue_id"])
    identifier = subject_identifier(event.get("subject") or {}, venue)
    if identifier is None:
        return []
    event_type = str(event["event_type"])
    targets: dict[tuple[str, str], list[str]] = {}
    if is_erasure_request(event_type):
        reason = "erasure_request"
        for agreement in agreements:
            if venue in agreement.provider_venues:
                targets[(agreement.partner, agreement.domain)] = []
        targets[(own_agreement_id(venue), venue_domain(venue))] = []
    elif event_type in ("consent.withdrawn", "consent.expired"):
        reason = "consent_withdrawn" if event_type == "consent.withdrawn" else "consent_expired"
        purpose = str(event["purpose"])
        before = (previous or {}).get(purpose)
        if not before or not before.get("granted"):
            return []
        named = set(before.get("recipients") or [])
        for agreement in agreements:
            if (venue in agreement.provider_venues and agreement.partner in named
                    and purpose in {p.value for p in agreement.purposes}):
                targets[(agreement.partner, agreement.domain)] = [purpose]
        targets[(own_agreement_id(venue), venue_domain(venue))] = [purpose]
    else:
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    for (partner, domain), purposes in sorted(targets.items()):
        for version, key in sorted(keys.items()):
            command_id = uuid.uuid5(COMMAND_NAMESPACE, f"{event['event_id']}|{partner}|{domain}|{version}")
            topic = venue_topic(venue, "erasure") if partner == own_agreement_id(venue) else erasure_topic(partner)
            out.append((topic, {
                "command_id": str(command_id), "partner": partner, "venue_id": venue,
                "subject_pseudonym": pseudonym(key, domain, identifier), "pseudonym_key_version": version,
                "purposes": purposes, "reason": reason, "occurred_at": event["occurred_at"],
                "issued_at": issued_at,
            }))
    return out
