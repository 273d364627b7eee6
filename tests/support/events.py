"""Shared by several test modules (tests never import each other)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from producers.gateway.signatures import sign
from tests.conftest import Bus

NOW = datetime.now(UTC)


PEOPLE = {
    "alice": "alice.dupont@exemple.fr",
    "bob": "bob.leroy@exemple.fr",
    "chloe": "chloe.nguyen@exemple.fr",
    "david": "david.moreau@exemple.fr",
    "emma": "emma.petit@exemple.fr",
}


def consent_payload(person: str, kind: str, purpose: str, recipients: list[str], days: int) -> dict[str, Any]:
    return {"type": f"consent.{kind}", "occurred_at": (NOW - timedelta(days=days)).isoformat(),
            "customer": {"email": PEOPLE[person]}, "purpose": purpose, "recipients": recipients,
            "recipient_list_version": "2026-09", "proof_ref": "form:test"}


def eventually(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    """``check()``'s first truthy result, polled every 0.5 s; its last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def order_payload(person: str, i: int) -> dict[str, Any]:
    return {"type": "ticket.order_placed", "event_id": str(uuid.uuid4()),
            "occurred_at": (NOW - timedelta(minutes=i)).isoformat(),
            "customer": {"email": PEOPLE[person].upper(), "postal_code": "75011", "customer_id": f"C-{person}"},
            "order_id": f"O-{person}-{i}", "production": "Crowd", "performance_id": "perf-1",
            "performance_at": (NOW + timedelta(days=30)).isoformat(), "discipline": "danse", "tariff": "reduit",
            "channel": "web", "quantity": 2, "amount_minor": 4400}


def send(bus: Bus, venue: str, payload: dict[str, Any], msg_id: str | None = None) -> str:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json",
               **sign(body, secret=bus.venue_secret(venue), msg_id=msg_id or f"msg_{uuid.uuid4().hex}",
                      timestamp=time.time())}
    resp = httpx.post(f"{bus.gateway_url}/v1/venues/{venue}/events", content=body, headers=headers, timeout=30)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["event_id"])
