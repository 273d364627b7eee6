"""Weezevent poll connector: the organizer's participants, polled with an update cursor.

Per Weezevent's API as documented for partners (``https://api.weezevent.com``, every call with
``api_key`` — the partner's key — and ``access_token`` — the organizer's token, obtained once with
``POST /auth/access_token``): ``GET /events`` lists the organizer's events
(``{"events": [{id, name, date: {start, end}}]}``), ``GET /participant/list?id_event[]=<id>&full=1
&last_update=<YYYY-MM-DD HH:MM:SS>`` the participants (one per ticket) changed since then
(``{"participants": [{id_participant, id_event, barcode, create_date, last_update, paid,
deleted, owner: {first_name, last_name, email}, buyer: {acheteur_email, …}, answers: [{label,
value}], id_transaction, price, id_weez_ticket, ticket_name}]}``). Times are Paris local time.
Check the fixtures (``tests/fixtures/vendors/weezevent_*.json``) against a real account when
onboarding a Weezevent venue; ``techne/vendor_sim.py`` serves this API locally (tests, demo).

Mapping, per participant: ``ticket.issued`` (key ``participant:<id>:issued``); once ``deleted``
(cancelled or refunded in Weezevent), ``ticket.order_refunded`` for that ticket (key
``participant:<id>:refunded``) — the key names the object and its state, so a participant
polled again yields the same ids. Opt-ins: the participant's ``answers`` (form questions), the
owner (else the buyer) being the person, mapped by the venue's configuration
(producers/adapters/consent.py) before the ticket events.

Cursor: per Weezevent event, the start of the last fully acknowledged poll minus ``OVERLAP_S``,
in ``<data_dir>/connectors/<venue>-weezevent.json`` (see cursor.py).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from producers.adapters.base import OptIn, SourceEvent, dig, listed
from producers.adapters.billetweb import PARIS, _local, _minor, _tariff  # the same Paris-time and price formats
from producers.adapters.consent import SourceMapping, consent_events
from producers.adapters.cursor import PolledAccount

OVERLAP_S = 60


def _customer(p: dict[str, Any]) -> dict[str, Any]:
    owner, buyer = dig(p, "owner", default={}), dig(p, "buyer", default={})
    return {k: v for k, v in {"email": dig(owner, "email") or dig(buyer, "acheteur_email"),
                              "first_name": dig(owner, "first_name"),
                              "last_name": dig(owner, "last_name")}.items() if v}


def map_participant(p: dict[str, Any], event: dict[str, Any], discipline: str = "autre") -> list[SourceEvent]:
    """Canonical events of one participant of ``event`` (pure)."""
    pid, event_id = str(dig(p, "id_participant", default="")), str(dig(event, "id", default=""))
    ticket = str(dig(p, "ticket_name", default=""))
    customer = _customer(p)
    order_id = str(dig(p, "id_transaction", default="")) or pid
    issued = {"type": "ticket.issued", "occurred_at": _local(dig(p, "create_date")), "source_system": "weezevent",
              "customer": customer, "order_id": order_id, "ticket_id": pid,
              "barcode": str(dig(p, "barcode", default="")), "production": dig(event, "name"),
              "production_id": event_id, "performance_id": event_id,
              "performance_at": _local(dig(event, "date", "start")), "discipline": discipline,
              "tariff": _tariff(ticket), "price_minor": _minor(dig(p, "price", default="0")), "currency": "EUR",
              "is_invitation": _tariff(ticket) == "invitation"}
    out = [SourceEvent({k: v for k, v in issued.items() if v is not None}, f"participant:{pid}:issued")]
    if dig(p, "deleted") in (True, 1, "1", "true"):
        refunded = {"type": "ticket.order_refunded", "occurred_at": _local(dig(p, "last_update")),
                    "source_system": "weezevent", "customer": customer, "order_id": order_id, "ticket_ids": [pid],
                    "amount_minor": _minor(dig(p, "price", default="0")), "currency": "EUR",
                    "refund_method": "original_payment", "reason": "customer_request"}
        out.append(SourceEvent(refunded, f"participant:{pid}:refunded"))
    return out


def participant_opt_ins(p: dict[str, Any]) -> list[OptIn]:
    """The opt-in answers of one participant (pure)."""
    key = f"participant:{dig(p, 'id_participant', default='')}:{dig(p, 'last_update', default='')}"
    at = _local(dig(p, "last_update")) or _local(dig(p, "create_date"))
    return [OptIn(str(dig(a, "label", default="")), dig(a, "value", default=""), _customer(p), at, key)
            for a in listed(p, "answers") if dig(a, "label")]


class Weezevent(PolledAccount):
    """One venue's Weezevent account: fetch what changed since the cursor, then save the cursor."""

    name = "weezevent"
    auth = "poll:weezevent:api-key+access-token"

    def __init__(self, venue_id: str, *, base_url: str, user: str, key: str, state_dir: Path,
                 discipline: str = "autre", consent: SourceMapping | None = None) -> None:
        """``user`` is the partner API key, ``key`` the organizer's access token."""
        super().__init__(venue_id, base_url=base_url, state_dir=state_dir, discipline=discipline, consent=consent)
        self._auth = {"api_key": user, "access_token": key}

    async def fetch(self, client: httpx.AsyncClient, cursor: dict[str, int]) -> tuple[list[SourceEvent],
                                                                                         dict[str, int]]:
        """Every event changed since ``cursor``, and the cursor to save once they are acknowledged."""
        started = int(time.time())
        resp = await client.get(f"{self.base_url}/events", params=self._auth)
        resp.raise_for_status()
        out: list[SourceEvent] = []
        new_cursor = dict(cursor)
        for event in listed(resp.json(), "events"):
            eid = str(dig(event, "id", default=""))
            params: dict[str, str] = {**self._auth, "id_event[]": eid, "full": "1"}
            if eid in cursor:
                params["last_update"] = datetime.fromtimestamp(cursor[eid], PARIS).strftime("%Y-%m-%d %H:%M:%S")
            page = await client.get(f"{self.base_url}/participant/list", params=params)
            page.raise_for_status()
            for p in listed(page.json(), "participants"):
                out.extend(consent_events(self.name, participant_opt_ins(p), self.consent))
                out.extend(map_participant(p, event, self.discipline))
            new_cursor[eid] = started - OVERLAP_S
        return out, new_cursor
