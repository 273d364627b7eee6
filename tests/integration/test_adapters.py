"""Vendor adapters on the real broker: HelloAsso (HMAC push), SecuTix 360 (Basic / API key push),
Billetweb (poll with a persisted cursor, against a local HTTP stand-in serving documented
payloads). Each event records how its authenticity was verified (Kafka header ``auth``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from techne.local import free_port
from tests.conftest import Bus
from tests.integration.adapters_helpers import records_and_headers, records_with_source
from tests.producer_env import BILLETWEB, HELLOASSO_KEY, SECUTIX_API_KEY, SECUTIX_BASIC
from tests.support.kafka import raw_offsets

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vendors"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    data.pop("_fixture")
    return data


def records_with(bus: Bus, venue: str, event_ids: list[str]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    return [r for r in asyncio.run(records_and_headers(bus.bootstrap, venue)) if str(r[0]["event_id"]) in event_ids]


def push(bus: Bus, venue: str, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{bus.gateway_url}/v1/venues/{venue}/sources/{source}", content=body,
                      headers={"content-type": "application/json", **headers}, timeout=30)


def test_helloasso_signed_order_becomes_order_paid(bus: Bus) -> None:
    note = fixture("helloasso_order.json")
    note["data"]["id"] = int(time.time() * 1000)  # a fresh order for this run
    body = json.dumps(note).encode()
    signature = hmac.new(HELLOASSO_KEY.encode(), body, hashlib.sha256).hexdigest()
    resp = push(bus, "lieu-unique", "helloasso", body, {"x-ha-signature": signature})
    assert resp.status_code == 202, resp.text
    (record, headers), = records_with(bus, "lieu-unique", resp.json()["event_ids"])
    assert record["event_type"] == "ticket.order_paid" and record["amount_minor"] == 3600
    assert record["order_id"] == str(note["data"]["id"]) and record["payment_ref"] == "55501"
    assert record["subject"]["email"] == "camille.durand@exemple.fr"
    assert headers["auth"] == "hmac-sha256:x-ha-signature"
    before = raw_offsets(bus)
    again = push(bus, "lieu-unique", "helloasso", body, {"x-ha-signature": signature})
    assert again.status_code == 202 and again.json()["status"] == "already_accepted"
    assert again.json()["event_ids"] == resp.json()["event_ids"]
    assert raw_offsets(bus) == before


@pytest.mark.parametrize("signature", ["0" * 64, "", "not-hex"])
def test_helloasso_bad_signature_is_401_and_writes_nothing(bus: Bus, signature: str) -> None:
    before = raw_offsets(bus)
    resp = push(bus, "lieu-unique", "helloasso", json.dumps(fixture("helloasso_order.json")).encode(),
                {"x-ha-signature": signature} if signature else {})
    assert resp.status_code == 401 and resp.json()["error"] == "unauthenticated"
    assert HELLOASSO_KEY not in resp.text
    assert raw_offsets(bus) == before


def test_helloasso_form_notification_is_acknowledged_without_event(bus: Bus) -> None:
    body = json.dumps(fixture("helloasso_form.json")).encode()
    signature = hmac.new(HELLOASSO_KEY.encode(), body, hashlib.sha256).hexdigest()
    before = raw_offsets(bus)
    resp = push(bus, "lieu-unique", "helloasso", body, {"x-ha-signature": signature})
    assert resp.status_code == 200 and resp.json()["event_ids"] == []
    assert raw_offsets(bus) == before


def test_secutix_order_closed_with_basic_auth(bus: Bus) -> None:
    note = fixture("secutix_order_closed.json")
    note["order"]["orderId"] = int(time.time() * 1000)
    basic = "Basic " + base64.b64encode(SECUTIX_BASIC.encode()).decode()
    resp = push(bus, "opera-lyon", "secutix", json.dumps(note).encode(), {"authorization": basic})
    assert resp.status_code == 202, resp.text
    found = records_with(bus, "opera-lyon", resp.json()["event_ids"])
    by_perf = {r["performance_id"]: (r, h) for r, h in found}
    assert set(by_perf) == {"TOSCA26-1201", "FORS26-0115"}
    tosca, headers = by_perf["TOSCA26-1201"]
    assert (tosca["quantity"], tosca["amount_minor"], tosca["discipline"], tosca["channel"]) == (2, 18000, "opera",
                                                                                               "web")
    assert by_perf["FORS26-0115"][0]["amount_minor"] == 3250
    assert headers["auth"] == "basic"


def test_secutix_access_control_with_api_key(bus: Bus) -> None:
    note = fixture("secutix_access_control.json")
    for scan in note["scans"]:
        scan["barcode"] = f"{scan['barcode']}-{time.time_ns()}"
    resp = push(bus, "opera-lyon", "secutix", json.dumps(note).encode(), {"x-api-key": SECUTIX_API_KEY})
    assert resp.status_code == 202, resp.text
    found = sorted(records_with(bus, "opera-lyon", resp.json()["event_ids"]), key=lambda r: r[0]["occurred_at"])
    assert [r["result"] for r, _ in found] == ["admitted", "already_scanned"]
    assert {h["auth"] for _, h in found} == {"api-key:x-api-key"}


@pytest.mark.parametrize("headers", [{"x-api-key": "wrong"}, {"authorization": "Basic " + base64.b64encode(
    b"secutix-push:wrong").decode()}, {}])
def test_secutix_wrong_credentials(bus: Bus, headers: dict[str, str]) -> None:
    before = raw_offsets(bus)
    resp = push(bus, "opera-lyon", "secutix", json.dumps(fixture("secutix_access_control.json")).encode(), headers)
    assert resp.status_code == 401
    assert raw_offsets(bus) == before


def test_unknown_source_and_unmappable_payload(bus: Bus) -> None:
    assert push(bus, "opera-lyon", "eventbrite", b"{}", {}).status_code == 404
    before = raw_offsets(bus)
    resp = push(bus, "opera-lyon", "secutix", b'{"notificationType": "SOMETHING"}', {"x-api-key": SECUTIX_API_KEY})
    assert resp.status_code == 422 and resp.json()["error"] == "unsupported_payload"
    assert raw_offsets(bus) == before


# --- Billetweb (poll) ---------------------------------------------------------------------------

class StandIn:
    """A local HTTP stand-in for Billetweb's API, serving the fixtures (filtered by last_update)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        user, key = BILLETWEB.split(":")

        def authorized(request: Request) -> bool:
            self.calls.append(dict(request.query_params))
            return request.query_params.get("user") == user and request.query_params.get("key") == key

        async def events(request: Request) -> JSONResponse:
            if not authorized(request):
                return JSONResponse({"error": "bad credentials"}, status_code=403)
            return JSONResponse(fixture("billetweb_events.json")["response"])

        async def attendees(request: Request) -> JSONResponse:
            if not authorized(request):
                return JSONResponse({"error": "bad credentials"}, status_code=403)
            since = int(request.query_params.get("last_update", "0"))
            return JSONResponse([a for a in fixture("billetweb_attendees.json")["response"]
                                 if a["last_update"] > since or since == 0])

        app = Starlette(routes=[Route("/api/events", events), Route("/api/event/{eid}/attendees", attendees)])
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"


@pytest.fixture
def billetweb() -> Iterator[StandIn]:
    stand_in = StandIn()
    stand_in.thread.start()
    while not stand_in.server.started:
        time.sleep(0.05)
    yield stand_in
    stand_in.server.should_exit = True
    stand_in.thread.join(5)


def poll(bus: Bus, url: str, data_dir: Path) -> list[dict[str, Any]]:
    env = {**os.environ, **bus.env, "TECHNE_DATA_DIR": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "connector", "poll", "billetweb", "--venue", "mixt",
                           "--base-url", url, "--once"], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def fixture_records(bus: Bus) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The Billetweb records of this module's fixture attendees."""
    ids = {a["id"] for a in fixture("billetweb_attendees.json")["response"]}
    return [(r, h) for r, h in records_with_source(bus, "mixt", "billetweb") if r.get("ticket_id") in ids]


def test_billetweb_poll_with_cursor_and_idempotent_ids(bus: Bus, billetweb: StandIn, tmp_path: Path) -> None:
    before = raw_offsets(bus)["raw.mixt"]
    (first,) = poll(bus, billetweb.url, tmp_path)
    assert (first["fetched"], first["sent"], first["rejected"]) == (3, 3, [])
    cursor = json.loads((tmp_path / "connectors" / "mixt-billetweb.json").read_text())
    assert cursor["812345"] > time.time() - 600
    assert raw_offsets(bus)["raw.mixt"] == before + 3
    assert billetweb.calls[-1]["last_update"] == "0"

    (second,) = poll(bus, billetweb.url, tmp_path)  # nothing changed since the cursor
    assert second["sent"] == 0 and billetweb.calls[-1]["last_update"] == str(cursor["812345"])
    assert raw_offsets(bus)["raw.mixt"] == before + 3

    records = fixture_records(bus)  # the session's bus is shared: other tests poll Billetweb too
    kinds = sorted((r["event_type"], h["auth"]) for r, h in records)
    auth = "poll:billetweb:api-key"
    assert kinds == [("attendance.ticket_scanned", auth), ("ticket.issued", auth), ("ticket.issued", auth)]
    issued = [r for r, _ in records if r["event_type"] == "ticket.issued"]
    assert {r["tariff"] for r in issued} == {"plein", "reduit"}
    assert {r["price_minor"] for r in issued} == {1200, 800}

    (tmp_path / "connectors" / "mixt-billetweb.json").unlink()  # cursor lost: same objects, same event ids
    poll(bus, billetweb.url, tmp_path)
    again = [r for r, _ in fixture_records(bus)]
    assert Counter(str(r["event_id"]) for r in again) == {str(r["event_id"]): 2 for r, _ in records}
