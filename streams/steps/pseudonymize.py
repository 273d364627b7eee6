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

Each shareable event type has its partner-facing schema (:data:`SHARED_SCHEMA_OF_TYPE`:
``ticket.order_placed`` -> ``SharedTicketOrder``, ``campaign.email_clicked`` ->
``SharedEmailClick``), projected by the same rules and pseudonymized in the same domain, so a
partner can join a person's clicks with their orders (and only within its own domain).
:data:`PROJECTABLE_BY_TYPE` (what an agreement covering that type may list in
``allowed_fields``) follows from the same rules, so an agreement cannot even name a raw
identifier; :data:`PROJECTABLE` is the ticket orders' set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from schemas import CATALOGUE
from schemas.models import SHARED_EMAIL_CLICK, SHARED_TICKET_ORDER
from streams.steps import generalize
from techne.identity import keyed_digest, subject_identifier

ALWAYS = ("event_id", "event_type", "occurred_at", "received_at", "venue_id", "agreement_id", "purpose",
          "subject_pseudonym", "pseudonym_key_version")


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


def _plan(schema_name: str) -> dict[str, tuple[str, str | None]]:
    """field -> ("copy", None) | ("generalize", generalizer) | ("never", None)."""
    plan: dict[str, tuple[str, str | None]] = {}
    for field in CATALOGUE.entry(schema_name).raw["fields"]:
        name = field["name"]
        if name in ALWAYS:
            continue
        rule = field.get("techne.generalize")
        if rule is not None and rule.get("with") in GENERALIZERS:
            plan[name] = ("generalize", str(rule["with"]))
        elif field.get("techne.privacy") == "none":
            plan[name] = ("copy", None)
        else:
            plan[name] = ("never", None)
    return plan


SHARED_SCHEMA_OF_TYPE = {"ticket.order_placed": SHARED_TICKET_ORDER, "campaign.email_clicked": SHARED_EMAIL_CLICK}
"""Shareable event type -> the partner-facing schema a partner receives it as."""
PLANS = {name: _plan(name) for name in set(SHARED_SCHEMA_OF_TYPE.values())}
SOURCES = {f["name"]: str(f["techne.generalize"]["from"]) for name in PLANS for f in CATALOGUE.entry(name).raw["fields"]
           if "techne.generalize" in f}
PLAN = PLANS[SHARED_TICKET_ORDER]
PROJECTABLE_BY_TYPE = {
    event_type: frozenset(name for name, (how, _) in PLANS[schema].items() if how != "never")
    for event_type, schema in SHARED_SCHEMA_OF_TYPE.items()
}
PROJECTABLE = PROJECTABLE_BY_TYPE["ticket.order_placed"]


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
