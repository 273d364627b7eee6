"""Pseudonymization and projection of an event for one partner, driven by the privacy tags.

What a partner may receive is decided by the tags of the partner-facing schema
(``techne.privacy``, see :mod:`schemas.privacy`), never by a hand-kept list:

* ``subject_pseudonym`` = HMAC-SHA256(key, agreement domain, normalized identifier): the
  e-mail (trimmed, lower-cased), else the E.164 phone, else the venue-scoped customer id. The
  domain is the partner's own unless the agreement names a shared one, so two partners cannot
  join their data on a person;
* a field tagged ``none`` is copied from the source event when the agreement allows it;
* a field carrying ``techne.generalize`` (``{"from": "subject.postal_code", "with":
  "departement"}``) is computed from its source by that generalizer when allowed;
* every other field (``direct``, ``free_text``, ``quasi`` without a generalizer) is null.

Each shareable event type has its partner-facing schema (:data:`schemas.sharing.SHARED_SCHEMA_OF_TYPE`:
``ticket.order_placed`` -> ``SharedTicketOrder``, ``campaign.email_clicked`` ->
``SharedEmailClick``), projected by the same rules and pseudonymized in the same domain, so a
partner can join a person's clicks with their orders (and only within its own domain).
:data:`schemas.sharing.PROJECTABLE_BY_TYPE` (what an agreement covering that type may list in
``allowed_fields``) follows from the same rules, so an agreement cannot even name a raw
identifier; :data:`PROJECTABLE` is the ticket orders' set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from core.identity import keyed_digest, subject_identifier
from schemas.models import SHARED_TICKET_ORDER
from schemas.sharing import GENERALIZER_NAMES, PLANS, SOURCES
from streams.steps import generalize


def _age_band(value: Any, record: Mapping[str, Any]) -> str | None:
    birth = value if isinstance(value, date) else None
    on = record["occurred_at"]
    return generalize.age_band(birth, on.date() if isinstance(on, datetime) else on)


GENERALIZERS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "departement": lambda v, _: generalize.departement(v),
    "age_band": _age_band,
    "ip_prefix": lambda v, _: generalize.ip_prefix(v),
    "device_class": lambda v, _: generalize.device_class(v),
}


assert set(GENERALIZERS) == GENERALIZER_NAMES, "schemas.sharing names the generalizers implemented here"


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def pseudonym(key: bytes, domain: str, identifier: str) -> str:
    return keyed_digest(key, "pseudonym:" + domain, identifier)


def share_record(record: dict[str, Any], agreement: Any, purpose: str, *, key_version: int, key: bytes,
                 schema: str = SHARED_TICKET_ORDER) -> dict[str, Any]:
    """Build the ``schema`` record (a key of :data:`PLANS`) a partner receives for ``record``
    under ``agreement``."""
    identifier = subject_identifier(record["subject"], record["venue_id"])
    if identifier is None:
        raise ValueError("event has no subject identifier; it cannot be shared at person level")
    out: dict[str, Any] = {
        "event_id": str(record["event_id"]), "event_type": record["event_type"],
        "occurred_at": record["occurred_at"], "received_at": record["received_at"],
        "venue_id": record["venue_id"], "agreement_id": agreement.id, "purpose": purpose,
        "subject_pseudonym": pseudonym(key, agreement.domain, identifier), "pseudonym_key_version": key_version,
    }
    allowed = set(agreement.allowed_fields)
    for name, (how, generalizer) in PLANS[schema].items():
        if name not in allowed or how == "never":
            out[name] = None
        elif how == "copy":
            out[name] = record.get(name)
        else:
            assert generalizer is not None
            out[name] = GENERALIZERS[generalizer](_lookup(record, SOURCES[name]), record)
    return out
