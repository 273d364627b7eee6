"""Consent expiry (pure): which granted consents of a ledger entry have lapsed, as the
``consent.expired`` events that the worker feeds back into its own input.

A grant lapses ``ttl`` after its event time (13 months by default, ``TECHNE_CONSENT_TTL_DAYS``
per purpose). The worker's expiry scan (streams/app.py, every ``TECHNE_CONSENT_EXPIRY_SCAN_S``,
one hour by default, so at most that late; also right after a restart once the ledger is
restored from its changelog) turns each lapsed grant into a ``consent.expired`` record and
produces it on the venue's raw topic under the ledger key: the same partition, so it is ordered
with that person's other events, and the ordinary consent path applies it — the ledger marks the
purpose withdrawn, every partner named in the grant gets the same erasure commands as for a
withdrawal (reason ``consent_expired``) and the audit gets a ``consent_expired`` line.

Idempotent: the event id is uuid5 of ledger key + purpose + grant time, and its event time is
the lapse time; a repeated scan (or two workers holding the same table partition) re-emits the
same event, which the ledger then finds already applied (no second erasure). A renewal (a newer
grant) makes the lapse event stale. Grants recorded before the ledger kept ``venue`` /
``subject`` cannot be turned into erasures here; they still stop sharing when they lapse.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.steps.consent import DEFAULT_TTL, LedgerEntry

EXPIRY_NAMESPACE = uuid.UUID("3b9f7c1e-8a2d-4e55-b0c4-7d1a2f9e6c03")
SOURCE_SYSTEM = "techne-consent-expiry"
AUTH = "consent-expiry:worker"


def _subject(identifier: str) -> dict[str, Any]:
    kind, _, value = identifier.partition(":")
    if kind == "email":
        return {"email": value}
    if kind == "phone":
        return {"phone": value}
    return {"customer_id": value.partition(":")[2]}  # customer:<venue>:<id>


def lapsed(key: str, entry: LedgerEntry, now: datetime,
           ttls: Mapping[str, timedelta] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``[(venue id, consent.expired record)]`` for each grant of ``entry`` lapsed at ``now``."""
    out = []
    for purpose, state in sorted(entry.items()):
        if not isinstance(state, dict) or not state.get("granted") or not state.get("subject"):
            continue
        granted_at = datetime.fromtimestamp(int(state["at"]) / 1_000_000, UTC)
        expires = granted_at + (ttls or {}).get(purpose, DEFAULT_TTL)
        if expires > now:
            continue
        venue = str(state["venue"])
        out.append((venue, {
            "event_id": str(uuid.uuid5(EXPIRY_NAMESPACE, f"{key}|{purpose}|{state['at']}")),
            "event_type": "consent.expired", "occurred_at": expires, "received_at": now, "venue_id": venue,
            "source_system": SOURCE_SYSTEM, "subject": _subject(str(state["subject"])), "purpose": purpose,
            "recipients": list(state.get("recipients") or []), "recipient_list_version": state.get("version", ""),
            "proof_ref": None, "collection_point": None, "collection_method": None, "wording_version": None,
            "expires_at": expires}))
    return out
