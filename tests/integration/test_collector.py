"""Web tracking on the real broker: Matomo HTTP tracking API (GET, POST form as sendBeacon
sends it, bulk JSON) and the beacon collector, per site key, with CORS."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import Bus
from tests.integration.adapters_helpers import records_with_source
from tests.producer_env import SITE_KEY, SITE_ORIGIN
from tests.support.kafka import raw_offsets

pytestmark = pytest.mark.integration
VENUE = "lieu-unique"


def tracking(visitor: str, **extra: str) -> dict[str, str]:
    return {"idsite": SITE_KEY, "rec": "1", "_id": visitor, "r": str(time.time_ns() % 10**6), "pv_id": "a1B2c3",
            "url": "https://www.lelieuunique.test/programme/nuit-electro", "action_name": "Nuit électro", **extra}


def test_matomo_get_post_and_bulk(bus: Bus) -> None:
    visitor = uuid.uuid4().hex[:16]
    url = f"{bus.gateway_url}/matomo.php"
    get = httpx.get(url, params=tracking(visitor), headers={"origin": SITE_ORIGIN})
    assert get.status_code == 204, get.text
    assert get.headers["access-control-allow-origin"] == SITE_ORIGIN
    beacon = httpx.post(url, content=urlencode(tracking(visitor, search="danse contemporaine")),
                        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8",
                                 "origin": SITE_ORIGIN})
    assert beacon.status_code == 204, beacon.text
    bulk = {"requests": ["?" + urlencode(tracking(visitor, e_c="video", e_a="play", e_n="teaser-electro")),
                         "?" + urlencode(tracking(visitor, ping="1"))]}  # a heartbeat records nothing
    assert httpx.post(url, json=bulk).status_code == 204
    found = {r["event_type"]: (r, h) for r, h in records_with_source(bus, VENUE, "matomo")
             if r["subject"].get("visitor_id") == visitor}
    assert set(found) == {"web.page_viewed", "web.searched", "web.content_interacted"}
    assert found["web.page_viewed"][0]["page_title"] == "Nuit électro"
    assert found["web.searched"][0]["query"] == "danse contemporaine"
    assert found["web.content_interacted"][0]["action"] == "play"
    assert {h["auth"] for _, h in found.values()} == {"site-key:matomo"}


def test_matomo_refusals(bus: Bus) -> None:
    before = raw_offsets(bus)
    url = f"{bus.gateway_url}/matomo.php"
    assert httpx.get(url, params={**tracking("ab"), "idsite": "nope"}).status_code == 404
    evil = httpx.get(url, params=tracking("ab"), headers={"origin": "https://evil.test"})
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    assert httpx.post(url, content=b'{"requests": 3}', headers={"content-type": "application/json"}).status_code == 400
    assert raw_offsets(bus) == before


def test_cors_preflight(bus: Bus) -> None:
    ok = httpx.options(f"{bus.gateway_url}/v1/collect/{SITE_KEY}",
                       headers={"origin": SITE_ORIGIN, "access-control-request-method": "POST"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == SITE_ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    denied = httpx.options(f"{bus.gateway_url}/v1/collect/{SITE_KEY}", headers={"origin": "https://evil.test"})
    assert denied.status_code == 403


def test_beacon_collector_text_plain_like_send_beacon(bus: Bus) -> None:
    visitor = f"v-{uuid.uuid4().hex[:12]}"
    events = [{"type": "web.page_viewed", "occurred_at": "2026-11-20T18:00:00+01:00",
               "customer": {"visitor_id": visitor}, "page_url": "https://www.lelieuunique.test/"},
              {"type": "web.content_interacted", "occurred_at": "2026-11-20T18:01:00+01:00",
               "customer": {"visitor_id": visitor}, "content_id": "podcast-12", "content_type": "podcast",
               "action": "complete"}]
    resp = httpx.post(f"{bus.gateway_url}/v1/collect/{SITE_KEY}", content=json.dumps(events),
                      headers={"content-type": "text/plain;charset=UTF-8", "origin": SITE_ORIGIN})
    assert resp.status_code == 202, resp.text
    assert resp.headers["access-control-allow-origin"] == SITE_ORIGIN
    assert len(resp.json()["event_ids"]) == 2


def test_beacon_without_content_type_like_send_beacon_with_a_blob(bus: Bus) -> None:
    """``navigator.sendBeacon(url, new Blob([json]))`` sends no Content-Type: accepted; a wrong
    type is still a 415 naming the accepted ones."""
    event = {"type": "web.page_viewed", "occurred_at": "2026-11-20T18:00:00+01:00",
             "customer": {"visitor_id": f"v-{uuid.uuid4().hex[:12]}"}, "page_url": "https://www.lelieuunique.test/"}
    url = f"{bus.gateway_url}/v1/collect/{SITE_KEY}"
    request = httpx.Request("POST", url, content=json.dumps(event).encode(), headers={"origin": SITE_ORIGIN})
    assert "content-type" not in request.headers
    with httpx.Client() as client:
        resp = client.send(request)
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["event_ids"]) == 1
    wrong = httpx.post(url, content=b"{}", headers={"origin": SITE_ORIGIN, "content-type": "image/png"})
    assert wrong.status_code == 415
    assert wrong.json()["detail"] == "send application/json or text/plain", wrong.text


@pytest.mark.parametrize(("body", "status"), [
    ({"type": "ticket.order_placed", "occurred_at": "2026-11-20T18:00:00+01:00"}, 422),  # web.* only
    ({"type": "web.page_viewed", "occurred_at": "2026-11-20T18:00:00+01:00", "customer": {}}, 422),
])
def test_beacon_refusals_write_nothing(bus: Bus, body: dict[str, object], status: int) -> None:
    before = raw_offsets(bus)
    resp = httpx.post(f"{bus.gateway_url}/v1/collect/{SITE_KEY}", json=body, headers={"origin": SITE_ORIGIN})
    assert resp.status_code == status, resp.text
    assert raw_offsets(bus) == before


def test_matomo_hits_without_r_or_pv_id_keep_distinct_ids(bus: Bus) -> None:
    """The Node tracker's shape (no ``r``, no ``pv_id``): N distinct hits -> N event ids; a hit
    sent again -> the same id; two identical entries of one bulk -> two hits."""
    visitor = uuid.uuid4().hex[:16]
    url = f"{bus.gateway_url}/matomo.php"

    def node_hit(page: str) -> dict[str, str]:
        return {"idsite": SITE_KEY, "rec": "1", "_id": visitor, "url": f"https://www.lelieuunique.test/{page}",
                "action_name": page}

    pages = [f"page-{i}" for i in range(5)]
    for page in pages:
        assert httpx.get(url, params=node_hit(page)).status_code == 204
    assert httpx.get(url, params=node_hit(pages[0])).status_code == 204  # a retry of the first hit
    bulk = {"requests": ["?" + urlencode(node_hit("bulk"))] * 2}
    assert httpx.post(url, json=bulk).status_code == 204
    assert httpx.post(url, json=bulk).status_code == 204  # the same bulk re-sent

    mine = [r for r, _ in records_with_source(bus, VENUE, "matomo") if r["subject"].get("visitor_id") == visitor]
    ids_by_page: dict[str, set[str]] = {}
    for r in mine:
        ids_by_page.setdefault(r["page_title"], set()).add(str(r["event_id"]))
    assert {p: len(v) for p, v in ids_by_page.items()} == {**{p: 1 for p in pages}, "bulk": 2}
    assert len({str(r["event_id"]) for r in mine}) == 7
