"""Signed requests to a running gateway, and what the raw topics hold (for the producers' tests)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from core.topics import raw_topic
from producers.gateway.signatures import sign
from tests.integration.kafka_helpers import decodable, read_all

ORDER: dict[str, Any] = {
    "type": "ticket.order_placed", "occurred_at": "2026-11-01T10:00:00+01:00",
    "customer": {"email": "lea.martin@exemple.fr", "postal_code": "69003"}, "order_id": "OPE-1",
    "production": "Tosca", "performance_id": "p1", "performance_at": "2026-12-01T20:00:00Z",
    "discipline": "opera", "tariff": "plein", "channel": "web", "quantity": 2, "amount_minor": 9000}


def order(**changes: Any) -> dict[str, Any]:
    return {**ORDER, "event_id": str(uuid.uuid4()), **changes}


def signed_post(url: str, body: bytes, secret: str, *, content_type: str = "application/json",
                msg_id: str | None = None, ts: float | None = None, timeout: float = 30) -> httpx.Response:
    headers = {"content-type": content_type,
               **sign(body, secret=secret, msg_id=msg_id or f"msg_{uuid.uuid4().hex}", timestamp=ts or time.time())}
    return httpx.post(url, content=body, headers=headers, timeout=timeout)


def raw_event_ids(bootstrap: str, venue: str) -> Counter[str]:
    """How many times each event_id is on the venue's raw topic."""
    values = asyncio.run(read_all(bootstrap, raw_topic(venue)))
    return Counter(str(r["event_id"]) for r in decodable(values))
