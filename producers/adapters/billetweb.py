"""Billetweb poll connector: no webhooks, so its API is polled with an update cursor.

Per Billetweb's public API docs as we know them (``https://www.billetweb.fr/api``, credentials
``user`` + ``key`` as query parameters, ``version=1``): ``GET /events`` lists the organizer's
events, ``GET /event/{id}/attendees?last_update=<unix time>`` the attendees (one per ticket)
changed since then. Check the fixtures (``tests/fixtures/vendors/billetweb_*.json``) against a
real account when onboarding a Billetweb venue.

Mapping, per attendee: ``ticket.issued`` (key ``attendee:<id>:issued``), once it is marked used
``attendance.ticket_scanned`` (key ``attendee:<id>:scanned``), and once it is ``disabled``
(cancelled and refunded in Billetweb) ``ticket.order_refunded`` for that ticket (key
``attendee:<id>:refunded``, at its ``last_update``): the key names the object and
its state, so polling an attendee again yields the same event ids, and only a new state is new.

Opt-ins: the answers to the venue's custom questions, per attendee (``custom``) and per order
(``custom_order``), ``{question: answer}``; the person is the attendee's e-mail (else the
order's); the time is the attendee's ``last_update`` when present (a changed answer is a new
consent event), else the order date. Mapped by the venue's configuration
(producers/adapters/consent.py); with a mapping, an unknown question fails the round (nothing
sent, cursor kept) with the reason in French and English.

Cursor: per Billetweb event, the start time of the last poll that was fully acknowledged, minus
``OVERLAP_S`` (overlaps are harmless: the ids repeat). It is saved to
``<data_dir>/connectors/<venue>-billetweb.json`` (written then renamed, fsynced) only after every
event of the poll was acknowledged by Kafka, so a crash re-polls rather than skips.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from producers.adapters.base import OptIn, SourceEvent, dig, listed
from producers.adapters.consent import SourceMapping, consent_events
from producers.adapters.cursor import PolledAccount

OVERLAP_S = 60
PARIS = ZoneInfo("Europe/Paris")
TARIFF_WORDS = [("invitation", "invitation"), ("exonér", "invitation"), ("réduit", "reduit"), ("reduit", "reduit"),
                ("étudiant", "etudiant"), ("etudiant", "etudiant"), ("jeune", "jeune"), ("-26", "jeune"),
                ("abonn", "abonne"), ("senior", "senior"), ("groupe", "groupe"), ("scolaire", "scolaire"),
                ("solidaire", "solidaire"), ("pass culture", "pass_culture"), ("plein", "plein")]


def _local(value: Any) -> str | None:
    """Billetweb's ``YYYY-MM-DD HH:MM:SS`` (Paris time) as ISO 8601 with its offset."""
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=PARIS).isoformat()
    except ValueError:
        return str(value)  # left for schema validation to reject, with its field path


def _tariff(label: str) -> str:
    lowered = label.lower()
    return next((symbol for word, symbol in TARIFF_WORDS if word in lowered), "autre")


def _minor(price: Any) -> Any:
    try:
        return int((Decimal(str(price)) * 100).quantize(Decimal(1)))
    except (InvalidOperation, ValueError):
        return price


def map_attendee(att: dict[str, Any], event: dict[str, Any], discipline: str = "autre") -> list[SourceEvent]:
    """Canonical events of one attendee of ``event`` (pure)."""
    attendee_id = str(dig(att, "id", default=""))
    customer = {k: v for k, v in {"email": dig(att, "email") or dig(att, "order_email"),
                                  "first_name": dig(att, "firstname"), "last_name": dig(att, "name")}.items() if v}
    event_id, barcode = str(dig(event, "id", default="")), str(dig(att, "barcode", default=""))
    issued = {"type": "ticket.issued", "occurred_at": _local(dig(att, "order_date")), "source_system": "billetweb",
              "customer": customer, "order_id": str(dig(att, "order_id", default="")), "ticket_id": attendee_id,
              "barcode": barcode, "production": dig(event, "name"), "production_id": event_id,
              "performance_id": event_id, "performance_at": _local(dig(event, "start")), "discipline": discipline,
              "tariff": _tariff(str(dig(att, "ticket", default=""))), "price_category": dig(att, "category"),
              "price_minor": _minor(dig(att, "price", default="0")), "currency": "EUR",
              "is_invitation": _tariff(str(dig(att, "ticket", default=""))) == "invitation"}
    out = [SourceEvent({k: v for k, v in issued.items() if v is not None}, f"attendee:{attendee_id}:issued")]
    if str(dig(att, "used", default="0")) == "1":
        scanned = {"type": "attendance.ticket_scanned", "occurred_at": _local(dig(att, "used_date")),
                   "source_system": "billetweb", "customer": customer, "ticket_id": attendee_id, "barcode": barcode,
                   "performance_id": event_id, "production_id": event_id, "result": "admitted"}
        out.append(SourceEvent(scanned, f"attendee:{attendee_id}:scanned"))
    if str(dig(att, "disabled", default="0")) == "1":
        refunded = {"type": "ticket.order_refunded", "occurred_at": _updated(att), "source_system": "billetweb",
                    "customer": customer, "order_id": issued["order_id"], "ticket_ids": [attendee_id],
                    "amount_minor": issued["price_minor"], "currency": "EUR", "refund_method": "original_payment",
                    "reason": "customer_request"}
        out.append(SourceEvent(refunded, f"attendee:{attendee_id}:refunded"))
    return out


def _updated(att: dict[str, Any]) -> str | None:
    """The attendee's ``last_update`` (Unix time) as ISO 8601, else its order date."""
    updated = dig(att, "last_update")
    if str(updated).isdigit() and int(updated) > 10**9:
        return datetime.fromtimestamp(int(updated), PARIS).isoformat()
    return _local(dig(att, "order_date"))


def attendee_opt_ins(att: dict[str, Any]) -> list[OptIn]:
    """The opt-in answers of one attendee (pure)."""
    customer = {k: v for k, v in {"email": dig(att, "email") or dig(att, "order_email"),
                                  "first_name": dig(att, "firstname"), "last_name": dig(att, "name")}.items() if v}
    updated, at = dig(att, "last_update"), _updated(att)
    answers: dict[str, Any] = {}
    for block in ("custom_order", "custom"):
        custom = dig(att, block, default={})
        if isinstance(custom, dict):
            answers.update({str(q): a for q, a in custom.items()})
    key = f"attendee:{dig(att, 'id', default='')}:{updated or ''}"
    return [OptIn(q, a, customer, at, key) for q, a in answers.items()]


class Billetweb(PolledAccount):
    """One venue's Billetweb account: fetch what changed since the cursor, then save the cursor."""

    name = "billetweb"

    auth = "poll:billetweb:api-key"

    def __init__(self, venue_id: str, *, base_url: str, user: str, key: str, state_dir: Path,
                 discipline: str = "autre", consent: SourceMapping | None = None) -> None:
        super().__init__(venue_id, base_url=base_url, state_dir=state_dir, discipline=discipline, consent=consent)
        self._auth = {"user": user, "key": key, "version": "1"}

    async def fetch(self, client: httpx.AsyncClient, cursor: dict[str, int]) -> tuple[list[SourceEvent],
                                                                                         dict[str, int]]:
        """Every event changed since ``cursor``, and the cursor to save once they are acknowledged."""
        started = int(time.time())
        resp = await client.get(f"{self.base_url}/events", params=self._auth)
        resp.raise_for_status()
        out: list[SourceEvent] = []
        new_cursor = dict(cursor)
        for event in listed(resp.json()):
            eid = str(dig(event, "id", default=""))
            params = {**self._auth, "last_update": str(cursor.get(eid, 0))}
            page = await client.get(f"{self.base_url}/event/{eid}/attendees", params=params)
            page.raise_for_status()
            for att in listed(page.json()):
                out.extend(consent_events(self.name, attendee_opt_ins(att), self.consent))
                out.extend(map_attendee(att, event, self.discipline))
            new_cursor[eid] = started - OVERLAP_S
        return out, new_cursor
