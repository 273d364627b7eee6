"""Pseudonymization and projection of an event for one destination, driven by the privacy tags.

What a partner may receive is decided by the tags of the partner-facing schema
(``techne.privacy``, see :mod:`schemas.privacy`), never by a hand-kept list:

* ``subject_pseudonym`` = HMAC-SHA256(key, destination domain, normalized identifier): the
  e-mail (trimmed, lower-cased), else the E.164 phone, else the venue-scoped customer id. The
  domain is the partner's own unless the agreement names a shared one, so two partners cannot
  join their data on a person; the venue's own store has its own domain
  (:func:`schemas.kinds.venue_domain`), which no agreement can name;
* a field tagged ``none`` is copied from the source event when the agreement allows it (from
  the raw field :data:`schemas.kinds.FIELD_SOURCES` names, when a lifecycle event names it
  differently);
* a field carrying ``techne.generalize`` (``{"from": "subject.postal_code", "with":
  "departement"}``) is computed from its source by that generalizer when allowed;
* every other field (``direct``, ``free_text``, ``quasi`` without a generalizer) is null.

Each shareable event type has its partner-facing schema (``SHARED_SCHEMA_OF_TYPE``, from
:mod:`schemas.kinds`), projected by the same rules and pseudonymized in the same domain, so a
partner can join a person's clicks, scans or page views with their orders (and only within its
own domain). Ticket orders also carry ``status`` (the lifecycle step of the event) and
``order_ref`` (the order id, pseudonymized in the same domain), whatever the agreement lists. A
kind that describes no person (ad spend) has an empty ``subject_pseudonym``.
:data:`schemas.sharing.PROJECTABLE_BY_TYPE` (what an agreement covering that type may list in
``allowed_fields``) follows from the same rules, so an agreement cannot even name a raw
identifier.

:func:`measurement_record` builds the consent-exempt audience measurement record of a page view
or content interaction (venue store only): a visitor key in a per-venue, per-year domain instead
of a pseudonym, truncated IP, city at most.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime
from typing import Any

from core.identity import keyed_digest, subject_identifier
from schemas.kinds import (
    FIELD_SOURCES,
    KIND_OF_TYPE,
    MEASUREMENT_PURPOSE,
    MEASUREMENT_SCHEMA,
    STATUS_OF_TYPE,
    measurement_agreement_id,
    measurement_domain,
)
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
    "url_path": lambda v, _: generalize.url_path(v),
    "url_host": lambda v, _: generalize.url_host(v),
    "city": lambda v, _: generalize.city(v),
    "country": lambda v, _: generalize.country(v),
}


assert set(GENERALIZERS) == GENERALIZER_NAMES, "schemas.sharing names the generalizers implemented here"


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def pseudonym(key: bytes, domain: str, identifier: str) -> str:
    return keyed_digest(key, "pseudonym:" + domain, identifier)


def _source(record: Mapping[str, Any], name: str) -> Any:
    """The raw value of shared field ``name`` (see :data:`schemas.kinds.FIELD_SOURCES`)."""
    event_type = record["event_type"]
    if name == "quantity" and event_type == "ticket.issued":
        return 1  # one issued ticket
    if name == "quantity" and event_type == "ticket.order_refunded":
        return len(record.get("ticket_ids") or []) or None  # tickets refunded, if listed
    return record.get(FIELD_SOURCES.get(event_type, {}).get(name, name))


def project(record: Mapping[str, Any], *, schema: str, agreement_id: str, purpose: str, domain: str,
            allowed: Collection[str] | None, key_version: int, key: bytes,
            anonymous: bool = False, identifier: str | None = None) -> dict[str, Any]:
    """The ``schema`` record (a key of :data:`PLANS`) for ``record`` in pseudonym ``domain``,
    with the fields ``allowed`` (``None``: every projectable one). A record of a kind about a
    person without any identifier raises ``ValueError``, unless ``anonymous`` (the venue's own
    store: an empty pseudonym); a kind about no one always has an empty pseudonym."""
    kind = KIND_OF_TYPE.get(record["event_type"])
    identifier = identifier or subject_identifier(record.get("subject") or {}, record["venue_id"])
    if identifier is not None and (kind is None or kind.personal):
        subject = pseudonym(key, domain, identifier)
    elif anonymous or (kind is not None and not kind.personal):
        subject = ""
    else:
        raise ValueError("event has no subject identifier; it cannot be shared at person level")
    out: dict[str, Any] = {
        "event_id": str(record["event_id"]), "event_type": record["event_type"],
        "occurred_at": record["occurred_at"], "received_at": record["received_at"],
        "venue_id": record["venue_id"], "agreement_id": agreement_id, "purpose": purpose,
        "subject_pseudonym": subject, "pseudonym_key_version": key_version,
    }
    if schema == SHARED_TICKET_ORDER:
        order_id = record.get("order_id")
        out["status"] = STATUS_OF_TYPE.get(record["event_type"])
        out["order_ref"] = pseudonym(key, domain, f"order:{record['venue_id']}:{order_id}") if order_id else None
    for name, (how, generalizer) in PLANS[schema].items():
        if how == "never" or (allowed is not None and name not in allowed):
            out[name] = None
        elif how == "copy":
            out[name] = _source(record, name)
        else:
            assert generalizer is not None
            out[name] = GENERALIZERS[generalizer](_lookup(record, SOURCES[name]), record)
    return out


def share_record(record: dict[str, Any], agreement: Any, purpose: str, *, key_version: int, key: bytes,
                 schema: str = SHARED_TICKET_ORDER) -> dict[str, Any]:
    """Build the ``schema`` record a partner receives for ``record`` under ``agreement``."""
    return project(record, schema=schema, agreement_id=agreement.id, purpose=purpose, domain=agreement.domain,
                   allowed=set(agreement.allowed_fields), key_version=key_version, key=key)


def visitor_identifier(record: Mapping[str, Any]) -> str | None:
    """Who a measurement record counts: the site's visitor id, else the person's identifier."""
    subject = record.get("subject") or {}
    visitor = subject.get("visitor_id")
    return f"visitor:{visitor}" if visitor else subject_identifier(subject, record["venue_id"])


def measurement_record(record: Mapping[str, Any], *, key_version: int, key: bytes) -> dict[str, Any]:
    """The consent-exempt measurement record of a page view or content interaction (module doc)."""
    venue, at = record["venue_id"], record["occurred_at"]
    return project(record, schema=MEASUREMENT_SCHEMA, agreement_id=measurement_agreement_id(venue),
                   purpose=MEASUREMENT_PURPOSE, domain=measurement_domain(venue, at.year), allowed=None,
                   key_version=key_version, key=key, anonymous=True, identifier=visitor_identifier(record))
