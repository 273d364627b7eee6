"""The gateway on the real broker: accepted events reach the raw topic; bad input gets a 4xx
with its reason and writes nothing to Kafka."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from core.topics import raw_topic
from producers.gateway.signatures import sign
from tests.conftest import Bus
from tests.integration.kafka_helpers import decodable, read_all
from tests.support.kafka import raw_offsets

pytestmark = pytest.mark.integration

ORDER = {"type": "ticket.order_placed", "occurred_at": "2026-11-01T10:00:00+01:00",
         "customer": {"email": "lea.martin@exemple.fr", "postal_code": "69003"}, "order_id": "OPE-1",
         "production": "Tosca", "performance_id": "p1", "performance_at": "2026-12-01T20:00:00Z",
         "discipline": "opera", "tariff": "plein", "channel": "web", "quantity": 2, "amount_minor": 9000}


def post(bus: Bus, body: bytes, *, venue: str = "opera-lyon", secret: str | None = None, ts: float | None = None,
         content_type: str = "application/json", msg_id: str | None = None) -> httpx.Response:
    secret = secret or bus.venue_secret(venue if venue in json.loads(bus.env["TECHNE_VENUE_SECRETS"])
                                        else "opera-lyon")
    headers = {"content-type": content_type,
               **sign(body, secret=secret, msg_id=msg_id or f"msg_{uuid.uuid4().hex}", timestamp=ts or time.time())}
    return httpx.post(f"{bus.gateway_url}/v1/venues/{venue}/events", content=body, headers=headers, timeout=30)




def test_accepted_event_is_on_the_raw_topic(bus: Bus) -> None:
    event_id = str(uuid.uuid4())
    resp = post(bus, json.dumps({**ORDER, "event_id": event_id}).encode())
    assert resp.status_code == 202, resp.text
    assert resp.json()["event_id"] == event_id
    decoded = decodable(asyncio.run(read_all(bus.bootstrap, raw_topic("opera-lyon"))))
    mine = [r for r in decoded if str(r["event_id"]) == event_id]
    assert len(mine) == 1
    assert mine[0]["venue_id"] == "opera-lyon"
    assert mine[0]["received_at"] >= mine[0]["occurred_at"]


def test_redelivered_webhook_keeps_its_event_id(bus: Bus) -> None:
    body = json.dumps(ORDER).encode()  # no event_id: derived from the webhook id
    first = post(bus, body, msg_id="msg_redelivery_1").json()["event_id"]
    again = post(bus, body, msg_id="msg_redelivery_1").json()["event_id"]
    other = post(bus, body, msg_id="msg_redelivery_2").json()["event_id"]
    assert first == again != other


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("forged signature", {"secret": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"}, 401, "invalid_signature"),
    ("stale timestamp", {"ts_shift": -3600}, 401, "invalid_signature"),
    ("future timestamp", {"ts_shift": 3600}, 401, "invalid_signature"),
    ("malformed json", {"body": b'{"type": "ticket.order_placed", '}, 400, "malformed_json"),
    ("schema invalid", {"body": json.dumps({**ORDER, "quantity": "deux", "discipline": "jazz"}).encode()},
     422, "schema_invalid"),
    ("moment past year 1 in UTC", {"body": json.dumps({**ORDER, "occurred_at": "0001-01-01T00:30:00+01:00"}).encode()},
     422, "schema_invalid"),  # was a 500 (OverflowError converting to UTC)
    ("date the stores cannot hold", {"body": json.dumps({**ORDER, "performance_at": "1850-01-01T20:00:00Z"}).encode()},
     422, "schema_invalid"),  # was a 202, then a dead letter at every partner sink
    ("UTF-8 BOM", {"body": b"\xef\xbb\xbf" + json.dumps(ORDER).encode()}, 400, "malformed_json"),
    ("unknown venue", {"venue": "nowhere"}, 404, "unknown_venue"),
    ("wrong content type", {"content_type": "text/plain"}, 415, "unsupported_media_type"),
    ("oversized body", {"body": json.dumps({**ORDER, "production": "x" * 2_000_000}).encode()}, 413,
     "body_too_large"),
]


@pytest.mark.parametrize(("case", "spec", "status", "error"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_rejected_and_nothing_produced(bus: Bus, case: str, spec: dict[str, Any], status: int,
                                                 error: str) -> None:
    before = raw_offsets(bus)
    body = spec.get("body", json.dumps(ORDER).encode())
    resp = post(bus, body, venue=spec.get("venue", "opera-lyon"), secret=spec.get("secret"),
                ts=time.time() + spec.get("ts_shift", 0), content_type=spec.get("content_type", "application/json"))
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error
    assert resp.json()["detail"]
    assert raw_offsets(bus) == before


def test_422_lists_failing_fields_without_echoing_input(bus: Bus) -> None:
    body = json.dumps({**ORDER, "quantity": "deux", "customer": {"email": "not-an-email"}}).encode()
    resp = post(bus, body)
    assert resp.status_code == 422
    fields = {e["field"] for e in resp.json()["errors"]}
    assert {"quantity", "customer.email"} <= fields
    assert "not-an-email" not in resp.text and "deux" not in resp.text


def test_secrets_and_emails_never_logged(bus: Bus) -> None:
    post(bus, json.dumps(ORDER).encode(), secret="whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
    log = (bus.stack.log_dir / "gateway.log").read_text()
    for secret in json.loads(bus.env["TECHNE_VENUE_SECRETS"]).values():
        assert secret[0] not in log
    assert "lea.martin@exemple.fr" not in log
