"""Batch endpoint, replay protection and the published spec, on the real broker: what each
answer says is checked against what really reached the raw topic."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import Bus
from tests.integration.gateway_helpers import ORDER, order, raw_event_ids, signed_post
from tests.support.kafka import raw_offsets

pytestmark = pytest.mark.integration
VENUE = "chaillot"


def batch(bus: Bus, body: bytes, *, content_type: str = "application/json", msg_id: str | None = None
          ) -> httpx.Response:
    return signed_post(f"{bus.gateway_url}/v1/venues/{VENUE}/events/batch", body, bus.venue_secret(VENUE),
                       content_type=content_type, msg_id=msg_id)


def single(bus: Bus, payload: dict[str, Any], msg_id: str) -> httpx.Response:
    return signed_post(f"{bus.gateway_url}/v1/venues/{VENUE}/events", json.dumps(payload).encode(),
                       bus.venue_secret(VENUE), msg_id=msg_id)


def test_json_array_accepts_valid_and_reports_invalid_by_index(bus: Bus) -> None:
    events = [order(), order(quantity="deux"), order(), order(customer={"email": "not-an-email"}), order()]
    resp = batch(bus, json.dumps(events).encode())
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (3, 2)
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted", "rejected", "accepted"]
    assert [e["field"] for e in body["results"][1]["errors"]] == ["quantity"]
    assert body["results"][3]["errors"][0]["field"] == "customer.email"
    assert "not-an-email" not in resp.text and "deux" not in resp.text
    on_topic = raw_event_ids(bus.bootstrap, VENUE)
    for i, ev in enumerate(events):
        assert on_topic[ev["event_id"]] == (1 if i in (0, 2, 4) else 0)
        if i in (0, 2, 4):
            assert body["results"][i]["event_id"] == ev["event_id"]


def test_ndjson_with_a_malformed_line(bus: Bus) -> None:
    a, b = order(), order()
    body = (json.dumps(a) + "\n{not json\n\n" + json.dumps(b) + "\n").encode()
    resp = batch(bus, body, content_type="application/x-ndjson")
    assert resp.status_code == 202, resp.text
    results = resp.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, "accepted"), (1, "rejected"), (2, "accepted")]
    assert results[1]["error"] == "malformed_json"
    on_topic = raw_event_ids(bus.bootstrap, VENUE)
    assert on_topic[a["event_id"]] == on_topic[b["event_id"]] == 1


def test_items_without_event_id_get_ids_derived_from_webhook_id_and_index(bus: Bus) -> None:
    body = json.dumps([ORDER, ORDER]).encode()
    first = batch(bus, body, msg_id="msg_batch_derived").json()["results"]
    assert first[0]["event_id"] != first[1]["event_id"]
    again = batch(bus, body, msg_id="msg_batch_derived")
    assert again.status_code == 202 and again.json()["status"] == "already_accepted"
    assert again.json()["results"] == first


@pytest.mark.parametrize(("body", "content_type", "status", "error"), [
    (json.dumps([order(quantity=0), {"type": "nope"}]).encode(), "application/json", 422, "schema_invalid"),
    (b'[{"type": "ticket.order_placed",', "application/json", 400, "malformed_json"),
    (json.dumps(order()).encode(), "application/json", 422, "not_a_batch"),
    (b"[]", "application/json", 422, "empty_batch"),
    (b"{bad\n", "application/x-ndjson", 422, "schema_invalid"),
    (json.dumps([order()]).encode(), "text/csv", 415, "unsupported_media_type"),
    (json.dumps([{"type": "x"}] * 1001).encode(), "application/json", 413, "batch_too_large"),
])
def test_batch_rejected_as_a_whole_writes_nothing(bus: Bus, body: bytes, content_type: str, status: int,
                                                  error: str) -> None:
    before = raw_offsets(bus)
    resp = batch(bus, body, content_type=content_type)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error
    assert raw_offsets(bus) == before
    if error == "schema_invalid" and content_type == "application/json":
        assert [r["index"] for r in resp.json()["results"]] == [0, 1]


def test_replayed_webhook_is_answered_again_and_produces_nothing(bus: Bus) -> None:
    payload = {k: v for k, v in ORDER.items() if k != "event_id"}
    msg_id = f"msg_{uuid.uuid4().hex}"
    first = single(bus, payload, msg_id)
    assert first.status_code == 202
    before = raw_offsets(bus)
    again = single(bus, payload, msg_id)
    assert again.status_code == 202
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["status"] == "already_accepted"
    assert raw_offsets(bus) == before


def test_concurrent_deliveries_of_one_webhook_produce_once(bus: Bus) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    payload = {k: v for k, v in ORDER.items() if k != "event_id"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: single(bus, payload, msg_id), range(8)))
    assert [a.json()["status"] for a in answers].count("accepted") == 1
    assert {a.status_code for a in answers} == {202}
    (event_id,) = {a.json()["event_id"] for a in answers}
    assert raw_event_ids(bus.bootstrap, VENUE)[event_id] == 1


def test_replay_protection_survives_a_gateway_restart(bus: Bus) -> None:
    ev = order()
    msg_id = f"msg_{uuid.uuid4().hex}"
    assert single(bus, ev, msg_id).status_code == 202
    port = int(bus.gateway_url.rsplit(":", 1)[1])
    bus.stack.stop("gateway")
    bus.stack.start_gateway(port=port)
    before = raw_offsets(bus)
    again = single(bus, ev, msg_id)
    assert again.status_code == 202 and again.json()["status"] == "already_accepted", again.text
    assert again.json()["event_id"] == ev["event_id"]
    assert raw_offsets(bus) == before


def test_openapi_spec_and_offline_docs_page(bus: Bus) -> None:
    spec = httpx.get(f"{bus.gateway_url}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    for path in ("/v1/venues/{venue_id}/events", "/v1/venues/{venue_id}/events/batch"):
        assert set(spec["paths"][path]["post"]["responses"]) >= {"202", "400", "401", "404", "413", "415",
                                                                  "422", "503"}
    assert "ticket.order_placed" in spec["components"]["schemas"]["Event"]["discriminator"]["mapping"]
    page = httpx.get(f"{bus.gateway_url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/openapi.json" in page.text
    assert not re.search(r"""(src|href)=["']https?://""", page.text)  # no CDN: works offline
