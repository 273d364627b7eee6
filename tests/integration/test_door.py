"""The defects of issue 17 "Hostile input", each against the real gateway process on the real broker.

* a body nested 1,000 levels deep, or holding an integer of thousands of digits, was a 500 on
  the signed event and batch routes, the vendor route, Matomo (bulk too) and the beacon
  collector: now a 400 naming the limit, and nothing is written;
* a 1 MB header or 5,000 headers were accepted: now 431 naming the limit (a 40 KB URL: 414);
* a client that writes its whole body before reading (Python's urllib) saw a broken pipe
  instead of the 413 (or 415, 404) answer: now it reads the answer;
* every answer, whatever it is, is counted by status in ``techne_gateway_requests_total``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.topics import raw_topic
from producers.gateway.signatures import sign
from techne.stack import Stack
from tests.conftest import Bus
from tests.integration.gateway_helpers import order
from tests.integration.kafka_helpers import end_offsets
from tests.producer_env import HELLOASSO_KEY, SITE_KEY

pytestmark = pytest.mark.integration
DEEP = b'{"type": "ticket.order_placed", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
HUGE_INT = b'{"type": "ticket.order_placed", "quantity": ' + b"9" * 5000 + b"}"


def _raw_total(bus: Bus) -> int:
    venues = list(json.loads(bus.env["TECHNE_VENUE_SECRETS"]))
    return sum(asyncio.run(end_offsets(bus.bootstrap, [raw_topic(v) for v in venues])).values())


def _signed(bus: Bus, venue: str, body: bytes) -> dict[str, str]:
    return sign(body, secret=bus.venue_secret(venue), msg_id=f"msg_{uuid.uuid4().hex}", timestamp=time.time())


def _requests(bus: Bus, body: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """(door, url, httpx kwargs) carrying ``body`` through every door that parses a body."""
    g = bus.gateway_url
    json_ct = {"content-type": "application/json"}
    return [
        ("event", f"{g}/v1/venues/opera-lyon/events", {"content": body, "headers": {
            **json_ct, **_signed(bus, "opera-lyon", body)}}),
        ("batch", f"{g}/v1/venues/opera-lyon/events/batch", {"content": b"[" + body + b"]", "headers": {
            **json_ct, **_signed(bus, "opera-lyon", b"[" + body + b"]")}}),
        ("batch ndjson", f"{g}/v1/venues/opera-lyon/events/batch", {"content": body, "headers": {
            "content-type": "application/x-ndjson", **_signed(bus, "opera-lyon", body)}}),
        ("helloasso", f"{g}/v1/venues/lieu-unique/sources/helloasso", {"content": body, "headers": {
            **json_ct, "x-ha-signature": hmac.new(HELLOASSO_KEY.encode(), body, hashlib.sha256).hexdigest()}}),
        ("canonical source", f"{g}/v1/venues/opera-lyon/sources/canonical", {"content": body, "headers": {
            **json_ct, **_signed(bus, "opera-lyon", body)}}),
        ("matomo bulk", f"{g}/matomo.php", {"content": b'{"requests": ["?idsite=' + SITE_KEY.encode()
                                                       + b'&rec=1"], "x": ' + body + b"}", "headers": json_ct}),
        ("beacon", f"{g}/v1/collect/{SITE_KEY}", {"content": body, "headers": json_ct}),
    ]


@pytest.mark.parametrize(("shape", "body", "error"), [("deep", DEEP, "too_deep"),
                                                       ("huge integer", HUGE_INT, "number_too_long")])
def test_deep_or_huge_bodies_are_a_named_400_on_every_door(bus: Bus, shape: str, body: bytes, error: str) -> None:
    before = _raw_total(bus)
    for door, url, kwargs in _requests(bus, body):
        resp = httpx.post(url, timeout=30, **kwargs)
        if door == "batch ndjson":  # one bad line is a rejected item of the batch, with the same reason
            assert resp.status_code == 422, (door, resp.status_code, resp.text[:300])
            assert resp.json()["results"][0]["error"] == error, door
            continue
        assert resp.status_code == 400, (door, resp.status_code, resp.text[:300])
        problem = resp.json()
        assert problem["error"] == error and problem["limit"] and problem["max"] > 0, (door, problem)
    assert _raw_total(bus) == before, "nothing written for a refused request"


def test_matomo_query_string_with_thousands_of_params_is_refused(bus: Bus) -> None:
    query = f"idsite={SITE_KEY}&rec=1&" + "&".join(f"p{i}=1" for i in range(1000))
    get = httpx.get(f"{bus.gateway_url}/matomo.php?{query}", timeout=30)
    post = httpx.post(f"{bus.gateway_url}/matomo.php", content=query.encode(), timeout=30,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    for resp in (get, post):
        assert resp.status_code == 400 and resp.json()["error"] == "too_many_params", resp.text[:200]
        assert resp.json()["max"] == 200


@pytest.mark.parametrize("value", ["9" * 5000, "²", "1" * 10])
def test_matomo_position_that_is_no_small_number_is_not_a_500(bus: Bus, value: str) -> None:
    """Found by the fuzz suite: ``e_v`` of 5,000 digits (int() refuses past 4,300) or ``²``
    (``str.isdigit`` holds, ``int`` fails) made the tracking route answer 500."""
    query = f"idsite={SITE_KEY}&rec=1&e_a=play&e_c=video&e_n=clip&_id=0123456789abcdef&e_v={value}"
    resp = httpx.get(f"{bus.gateway_url}/matomo.php?{query}", timeout=30)
    assert resp.status_code == 204, resp.text[:300]


def test_a_compressed_body_is_refused_not_inflated(bus: Bus) -> None:
    import gzip

    bomb = gzip.compress(b"[" * 10_000_000)  # 10 MB once inflated, 10 KB on the wire
    for path in ("/v1/venues/opera-lyon/events", f"/v1/collect/{SITE_KEY}", "/matomo.php"):
        resp = httpx.post(f"{bus.gateway_url}{path}", content=bomb, timeout=30,
                          headers={"content-type": "application/json", "content-encoding": "gzip"})
        assert resp.status_code == 415 and resp.json()["error"] == "unsupported_content_encoding", path


def _raw_http(bus: Bus, head: bytes, body: bytes = b"") -> bytes:
    """Send a hand-written request; the whole answer (the server closes after a refusal)."""
    host, port = bus.gateway_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_oversized_or_too_many_headers_are_431(bus: Bus) -> None:
    request = b"POST /v1/venues/opera-lyon/events HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
    big = _raw_http(bus, request + b"x-big: " + b"a" * 1_000_000 + b"\r\n\r\n", b"{}")
    assert _status(big) == (431, {"error": "headers_too_large", "detail": "headers over 32768 bytes",
                                  "limit": "header_bytes", "max": 32768})
    many = _raw_http(bus, request + b"".join(b"x-h%d: 1\r\n" % i for i in range(5000)) + b"\r\n", b"{}")
    status, problem = _status(many)
    assert (status, problem["limit"]) == (431, "headers")
    url = _raw_http(bus, b"GET /matomo.php?" + b"a" * 40_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    assert _status(url)[0] == 414
    assert httpx.get(f"{bus.gateway_url}/healthz", timeout=10).status_code == 200
    metrics = httpx.get(f"{bus.gateway_url}/metrics/", timeout=10).text
    assert 'techne_gateway_requests_total{status="431",venue="unknown"}' in metrics


@pytest.mark.parametrize(("head", "body"), [
    (b"content-length: 2\r\ntransfer-encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n"),  # smuggling shape
    (b"transfer-encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"),  # a chunk size that is no number
    (b"content-length: two\r\n", b"{}"),
])
def test_a_request_that_is_not_valid_http_is_a_counted_400_problem(bus: Bus, head: bytes, body: bytes) -> None:
    before = _raw_total(bus)
    request = b"POST /v1/venues/opera-lyon/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    status, problem = _status(_raw_http(bus, request + head + b"\r\n", body))
    assert status == 400 and problem["error"] == "malformed_http" and "HTTP/1.1" in problem["detail"]
    assert _raw_total(bus) == before
    metrics = httpx.get(f"{bus.gateway_url}/metrics/", timeout=10).text
    assert 'techne_gateway_events_rejected_total{reason="malformed_http",venue="unknown"}' in metrics


def _urllib(url: str, body: bytes, content_type: str = "application/json",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (the test gateway's URL)
                                     headers={"content-type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_client_writing_its_whole_body_first_reads_the_refusal(bus: Bus) -> None:
    """urllib sends ``Connection: close`` and its whole body before reading: it used to hit a
    broken pipe about half the time on a 2 MB body. Ten tries of each refusal, all answered."""
    g = bus.gateway_url
    big = json.dumps({**order(), "production": "x" * 2_000_000}).encode()
    for _ in range(10):
        problem = _urllib(f"{g}/v1/venues/opera-lyon/events", big, headers=_signed(bus, "opera-lyon", big))[1]
        assert (problem["error"], problem["limit"], problem["max"]) == ("body_too_large", "body_bytes", 1_048_576)
        assert _urllib(f"{g}/v1/venues/opera-lyon/events", big, "text/csv")[0] == 415
        assert _urllib(f"{g}/v1/venues/nowhere/events", big)[0] == 404
        assert _urllib(f"{g}/v1/collect/{SITE_KEY}", big)[0] == 413
    # and an accepted event through the same client, after all that
    body = json.dumps(order()).encode()
    assert _urllib(f"{g}/v1/venues/opera-lyon/events", body, headers=_signed(bus, "opera-lyon", body))[0] == 202


def test_a_matomo_tracker_reaches_its_site_by_numeric_id(bus: Bus) -> None:
    """Matomo trackers and SDKs send ``idsite`` as a number: a site's optional ``"id"`` names it too."""
    before = _raw_total(bus)
    visitor = uuid.uuid4().hex[:16]
    query = f"idsite=7&rec=1&url=https%3A%2F%2Fwww.lelieuunique.test%2Fagenda&_id={visitor}&r={uuid.uuid4().hex[:6]}"
    resp = httpx.get(f"{bus.gateway_url}/matomo.php?{query}", timeout=30)
    assert resp.status_code == 204, resp.text[:300]
    assert _raw_total(bus) == before + 1
    assert httpx.get(f"{bus.gateway_url}/matomo.php?idsite=8&rec=1", timeout=30).status_code == 404


def test_the_gateway_exports_its_5xx_series_from_the_start(bus: Bus) -> None:
    """``techne_gateway_requests_total`` had no ``status="500"`` series until a first 500, so the
    5xx alert could not see an isolated one; the gateway now creates them at 0 for every venue."""
    text = httpx.get(f"{bus.gateway_url}/metrics/", timeout=10).text
    for venue in [*json.loads(bus.env["TECHNE_VENUE_SECRETS"]), "unknown"]:
        for status in ("500", "503"):
            assert f'techne_gateway_requests_total{{status="{status}",venue="{venue}"}}' in text, (venue, status)
    assert "techne_sink_" not in text and "techne_dlq_total" not in text and "techne_consumer_lag" not in text


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_clients_get_408_and_hold_no_connection(bus: Bus, tmp_path: Path) -> None:
    """A slow-loris client (a request head, or a body, trickling in) was held forever: uvicorn
    only times out idle keep-alive connections. A gateway with 1-second bounds answers 408."""
    stack = Stack({**bus.env, "TECHNE_DATA_DIR": str(tmp_path), "TECHNE_REQUEST_HEAD_TIMEOUT_S": "1",
                   "TECHNE_REQUEST_BODY_TIMEOUT_S": "1"}, tmp_path / "logs")
    url = stack.start_gateway()
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/venues/opera-lyon/events HTTP/1.1\r\nhost: x\r\n")  # and no more
            started = time.monotonic()
            status, problem = _status(_recv_all(sock))
        assert (status, problem["error"], problem["limit"]) == (408, "request_timeout", "head_seconds")
        assert time.monotonic() - started < 5
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/venues/opera-lyon/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
                         b"\r\ncontent-length: 100\r\n\r\n{\"type\":")  # 92 bytes short, forever
            started = time.monotonic()
            status, problem = _status(_recv_all(sock))
        assert (status, problem["error"], problem["limit"]) == (408, "request_timeout", "body_seconds")
        assert time.monotonic() - started < 5
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        metrics = httpx.get(f"{url}/metrics/", timeout=10).text
        assert 'techne_gateway_requests_total{status="408",venue="opera-lyon"} 1.0' in metrics
        assert 'techne_gateway_requests_total{status="408",venue="unknown"} 1.0' in metrics
    finally:
        stack.stop_all()
