"""Consent ledger logic (pure).

A ledger entry is the JSON-able state of one subject at one venue::

    {purpose: {"granted": bool, "at": <event time, µs since epoch>,
               "recipients": [partner ids], "version": <recipient list version>,
               "venue": <venue id>, "subject": <identifier>}}   # the last two while granted only

``venue`` and ``subject`` (the person's identifier, :func:`core.identity.subject_identifier`) are
kept only while a grant stands: what the expiry scan (expiry.py) needs to issue the lapsed
consent's erasure commands. A withdrawal, an expiry or an erasure request drops them.

:func:`apply_consent` folds a consent event into an entry, resolving out-of-order delivery by
event time (``occurred_at``): an older event never overrides a newer one. :func:`decide` is
default-deny: no entry, no purpose, a withdrawal, an expired grant, or a partner not named in
the recipients the person was shown all mean "not shared".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.identity import subject_identifier
from schemas.models import Purpose

LedgerEntry = dict[str, dict[str, Any]]
DEFAULT_TTL = timedelta(days=395)  # 13 months, the CNIL's usual consent lifetime
PURPOSES = tuple(p.value for p in Purpose)
ERASURE_REQUEST_TYPES = frozenset({"erasure.requested", "subject.erasure_requested"})


def _micros(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def apply_consent(entry: LedgerEntry | None, event: dict[str, Any]) -> tuple[LedgerEntry, bool]:
    """Return ``(new entry, changed)`` after applying a consent record (granted, withdrawn or
    expired), or an erasure request, which withdraws every purpose at its event time."""
    current: LedgerEntry = dict(entry or {})
    at = _micros(event["occurred_at"])
    if str(event["event_type"]) in ERASURE_REQUEST_TYPES:
        changed = False
        for purpose in PURPOSES:
            previous = current.get(purpose)
            if previous is None or int(previous["at"]) <= at:
                current[purpose] = {"granted": False, "at": at, "recipients": [], "version": ""}
                changed = True
        return current, changed
    purpose = str(event["purpose"])
    previous = current.get(purpose)
    if previous is not None and int(previous["at"]) > at:
        return current, False  # stale: a newer decision is already recorded
    granted = event["event_type"] == "consent.granted"
    current[purpose] = {
        "granted": granted,
        "at": at,
        "recipients": sorted(set(event.get("recipients") or [])),
        "version": event.get("recipient_list_version", ""),
    }
    identifier = subject_identifier(event.get("subject") or {}, str(event.get("venue_id", ""))) if granted else None
    if identifier is not None:
        current[purpose].update(venue=str(event["venue_id"]), subject=identifier)
    return current, True


@dataclass(frozen=True)
class ConsentDecision:
    allowed: bool
    reason: str  # granted | no_record | no_purpose | withdrawn | expired | recipient_not_named


def decide(entry: LedgerEntry | None, *, purpose: str, partner: str, at: datetime,
           ttl: timedelta = DEFAULT_TTL) -> ConsentDecision:
    """May an event of time ``at`` be shared with ``partner`` for ``purpose``?"""
    if not entry:
        return ConsentDecision(False, "no_record")
    state = entry.get(purpose)
    if state is None:
        return ConsentDecision(False, "no_purpose")
    if not state["granted"]:
        return ConsentDecision(False, "withdrawn")
    if _micros(at) - int(state["at"]) > ttl.total_seconds() * 1_000_000:
        return ConsentDecision(False, "expired")
    if partner not in state["recipients"]:
        return ConsentDecision(False, "recipient_not_named")
    return ConsentDecision(True, "granted")


def consented_purpose(entry: LedgerEntry | None, *, at: datetime,
                      ttls: Mapping[str, timedelta]) -> str | None:
    """The first purpose (in :data:`PURPOSES` order, consent-exempt measurement excepted) the
    person has a current grant for at ``at``, whatever its recipients; ``None`` if none."""
    for purpose in PURPOSES:
        state = (entry or {}).get(purpose)
        if purpose == Purpose.AUDIENCE_MEASUREMENT or not state or not state["granted"]:
            continue
        if _micros(at) - int(state["at"]) <= ttls.get(purpose, DEFAULT_TTL).total_seconds() * 1_000_000:
            return purpose
    return None
