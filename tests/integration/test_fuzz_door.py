"""Property-based fuzzing of EVERY route of the gateway with hostile bodies, query strings and
headers, against the real gateway process on the real broker.

Routes are enumerated from the app itself (:func:`producers.gateway.create_app`), so a new route
is fuzzed without touching this file (a new path parameter must be given values in
``PATH_VALUES``, which a test checks). Requests are authenticated the way each door expects
(Standard Webhooks signature of the exact bytes, HelloAsso HMAC, SecuTix API key, an allowed
``Origin``) so that hostile bodies get past authentication to the parsing door.

For every generated request: never a 5xx (and never a dropped connection), the gateway
process stays up, and for each route nothing is written for a refused request: the events on
the raw topics grow exactly by the events the gateway counted as accepted (a refused request
counts none). Bounded: ``EXAMPLES`` per route, about a minute in all on 2 CPUs, the same examples
every run; ``TECHNE_FUZZ_EXAMPLES=500`` runs that many random ones per route instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook
from starlette.routing import Mount, Route

from core.settings import DEFAULT_VENUES, Settings
from core.topics import raw_topic
from core.venues import load_venues
from producers.adapters import PUSH
from producers.gateway import create_app
from producers.gateway.preferences import preference_link
from tests.conftest import Bus
from tests.integration.gateway_helpers import ORDER
from tests.integration.kafka_helpers import end_offsets
from tests.producer_env import HELLOASSO_KEY, SECUTIX_API_KEY, SITE_KEY, SITE_ORIGIN

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("TECHNE_FUZZ_EXAMPLES", "30"))  # more, and random, for a longer hunt
DERANDOMIZE = "TECHNE_FUZZ_EXAMPLES" not in os.environ  # `make test`: the same bounded run every time
VENUES = sorted(load_venues(DEFAULT_VENUES))
# mostly known values, so that most requests reach the parsing door
# mostly known values, so that most requests reach the parsing door; "token" (a preference-centre
# link) is filled per session from the bus's subject key (see _path_values)
PATH_VALUES: dict[str, list[str]] = {"venue_id": [*VENUES[:3] * 3, "nowhere"],
                                     "source": [*sorted(PUSH) * 3, "nothing"],
                                     "site_key": [SITE_KEY] * 5 + ["unknown-site"],
                                     "token": ["forged-token"]}


def _path_values(bus: Bus) -> dict[str, list[str]]:
    key = bus.env["TECHNE_SUBJECT_KEY"].encode()
    link = preference_link(key, VENUES[0], "lea.martin@exemple.fr", bus.gateway_url)
    return {**PATH_VALUES, "token": [link.rsplit("/", 1)[1]] * 5 + ["forged-token"]}
STATUSES: Counter[str] = Counter()


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the gateway serves."""
    app = create_app(Settings(subject_key=SecretStr("k" * 32), datakey_master_keys={1: SecretStr("m" * 32)}))
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or {"GET"}) if m != "HEAD"]
        elif isinstance(route, Mount):
            found += [("GET", route.path + "/"), ("POST", route.path + "/")]
    return found


ROUTES = _routes()


def teardown_module() -> None:
    print("fuzz answers:", dict(sorted(STATUSES.items())))


def test_every_path_parameter_has_values() -> None:
    params = {p for _, path in ROUTES for p in re.findall(r"{(\w+)", path)}
    assert params <= set(PATH_VALUES), f"give the fuzz suite values for {params - set(PATH_VALUES)}"
    assert len(ROUTES) >= 10 and any("matomo" in p for _, p in ROUTES)


# --- hostile bodies -------------------------------------------------------------------------

def _event(kind: str) -> dict[str, Any]:
    if kind == "web":
        return {"type": "web.page_viewed", "occurred_at": "2026-11-01T10:00:00Z", "page_url": "https://x.test/",
                "customer": {"visitor_id": "0123456789abcdef"}}
    if kind == "helloasso":
        return {"eventType": "Order", "data": {"id": 1, "items": [{"id": 2, "amount": 1000}]}}
    return {**ORDER, "event_id": str(uuid.uuid4())}


def _nest(depth: int, kind: str) -> str:
    """``depth`` nested arrays or objects around 1, as JSON text (json.dumps itself would recurse)."""
    return "[" * depth + "1" + "]" * depth if kind == "array" else '{"a":' * depth + "1" + "}" * depth


HOSTILE_VALUES: list[tuple[str, Any]] = [("deep", None), ("huge_int", None), ("huge_float", "1e999"),
                                         ("long_float", None), ("nan", "NaN"), ("infinity", "-Infinity"),
                                         ("surrogate", '"\\ud800"'), ("long_string", None), ("many_keys", None),
                                         ("many_items", None), ("null_char", '"a\\u0000b"'), ("bool", "true")]


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """A JSON document with one hostile value somewhere in an otherwise plausible event."""
    event = _event(draw(st.sampled_from(["order", "web", "helloasso"])))
    field = draw(st.sampled_from([*sorted(event), "customer", "extra"]))
    kind, literal = draw(st.sampled_from(HOSTILE_VALUES))
    if kind == "deep":
        literal = _nest(draw(st.integers(33, 3000)), draw(st.sampled_from(["array", "object"])))
    elif kind == "huge_int":
        literal = draw(st.sampled_from(["", "-"])) + "9" * draw(st.integers(41, 20_000))
    elif kind == "long_float":
        literal = "1." + "5" * draw(st.integers(40, 5000)) + "e" + str(draw(st.integers(-400, 400)))
    elif kind == "long_string":
        literal = json.dumps("é" * draw(st.integers(65_537, 120_000)))
    elif kind == "many_keys":
        literal = json.dumps({f"k{i}": i for i in range(draw(st.integers(1001, 3000)))})
    elif kind == "many_items":
        literal = "[" + ",".join("0" * draw(st.integers(10_001, 20_000))) + "]"
    marker = "__HOSTILE__"
    text = json.dumps({**event, field: marker}, ensure_ascii=draw(st.booleans()))
    text = text.replace(json.dumps(marker), str(literal))
    body = text.encode()
    if draw(st.booleans()):  # as an array (a batch, a beacon list)
        body = b"[" + body + b"]"
    return body


@st.composite
def structural_bodies(draw: st.DrawFn) -> bytes:
    """Whole bodies that are hostile in their shape or encoding."""
    kind = draw(st.sampled_from(["deep_array", "deep_object", "dup_key", "utf16", "bom", "invalid_utf8",
                                 "binary", "empty", "scalar", "ndjson", "form", "bulk", "trailing"]))
    event = json.dumps(_event("order"))
    n = draw(st.integers(33, 100_000))
    match kind:
        case "deep_array":
            return b"[" * n + b"]" * draw(st.sampled_from([0, n]))
        case "deep_object":
            return b'{"a":' * n + b"1" + b"}" * n
        case "dup_key":
            return ('{"type": "x", ' + event[1:]).encode()
        case "utf16":
            return event.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
        case "bom":
            return b"\xef\xbb\xbf" + event.encode()
        case "invalid_utf8":
            bad = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80"]))
            return event.encode().replace(b"Tosca", b"To" + bad + b"sca")
        case "binary":
            return draw(st.binary(min_size=1, max_size=2000))
        case "empty":
            return draw(st.sampled_from([b"", b" ", b"\n\n", b"null", b"[]", b"{}", b"[[]]", b'""', b"0"]))
        case "scalar":
            return draw(st.sampled_from([b"1e999", b"NaN", b"9" * 5000, b'"\\udc00"', b"true"]))
        case "ndjson":
            lines = [event.encode(), b"[" * 50, b"{", b"9" * 100, b'{"a":1,"a":2}', b"\xff"]
            return b"\n".join(draw(st.lists(st.sampled_from(lines), min_size=1, max_size=50)))
        case "form":
            return "&".join(f"p{i}={'x' * draw(st.integers(0, 3))}" for i in range(min(n, 20_000))).encode()
        case "bulk":
            requests = draw(st.sampled_from([
                [f"?idsite={SITE_KEY}&rec=1"] * min(n, 5000), [1, None, {"a": 1}], "?idsite=1",
                [f"?idsite={SITE_KEY}&rec=1&" + "&".join(f"p{i}=1" for i in range(300))],
                [f"?idsite={SITE_KEY}&rec=1&_id=" + "a" * 70_000]]))
            return json.dumps({"requests": requests}).encode()
        case _:
            return event.encode() + draw(st.sampled_from([b" x", b"}", b"\x00", b",{}"]))


QUERIES = st.sampled_from(["", f"idsite={SITE_KEY}&rec=1&url=https%3A%2F%2Fx.test%2F", "idsite=7&rec=1",
                           f"idsite={SITE_KEY}&rec=1&" + "&".join(f"p{i}=1" for i in range(1000)),
                           f"idsite={SITE_KEY}&rec=1&url=%ED%A0%80%zz%", f"idsite={SITE_KEY}&rec=1&e_a=play&e_v=" +
                           "9" * 5000, "a=" + "b" * 20_000, "&&&&==&=", "idsite[]=1&idsite=2"])
CONTENT_TYPES = st.sampled_from(["application/json"] * 8 + ["application/json; charset=utf-16", "text/plain",
                                 "application/x-ndjson", "application/x-www-form-urlencoded", "", "text/csv",
                                 "multipart/form-data; boundary=x", "APPLICATION/JSON;;;"])


@dataclass
class Hostile:
    body: bytes
    query: str
    content_type: str
    extra_headers: list[tuple[str, str]]
    chunked: bool
    timestamp_offset: int


@st.composite
def hostile_requests(draw: st.DrawFn) -> Hostile:
    body = draw(st.one_of(json_bodies(), structural_bodies()))
    headers: list[tuple[str, str]] = []
    shape = draw(st.sampled_from(["none"] * 6 + ["many", "big", "encoding", "odd"]))
    if shape == "many":
        headers = [(f"x-h{i}", "1") for i in range(draw(st.integers(101, 5000)))]
    elif shape == "big":
        headers = [("x-big", "a" * draw(st.integers(32_769, 1_000_000)))]
    elif shape == "encoding":
        headers = [("content-encoding", draw(st.sampled_from(["gzip", "deflate", "br", "identity, gzip"])))]
    elif shape == "odd":
        headers = [(draw(st.sampled_from(["webhook-id", "x-secutix-notification-id", "origin", "user-agent",
                                          "expect", "x-ha-signature"])),
                    draw(st.sampled_from(["", "a" * 20_000, "é", "100-continue", "null", "https://evil.test"])))]
    return Hostile(body, draw(QUERIES), draw(CONTENT_TYPES), headers, draw(st.booleans()),
                   draw(st.sampled_from([0, 0, 0, -10_000, 10_000])))


# --- sending --------------------------------------------------------------------------------

def _auth_headers(bus: Bus, venue: str, h: Hostile) -> dict[str, str]:
    secrets = json.loads(bus.env["TECHNE_VENUE_SECRETS"])
    secret = secrets.get(venue, secrets[VENUES[0]])[0]
    msg_id = f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time()) + h.timestamp_offset
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=_utc(stamp), data=h.body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature,
            "x-ha-signature": hmac.new(HELLOASSO_KEY.encode(), h.body, hashlib.sha256).hexdigest(),
            "x-api-key": SECUTIX_API_KEY, "origin": SITE_ORIGIN}


def _utc(stamp: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, tz=UTC)


def _events_accepted(bus: Bus) -> float:
    text = httpx.get(f"{bus.gateway_url}/metrics/", timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("techne_gateway_events_total{"))


def _raw_total(bus: Bus) -> int:
    topics = [raw_topic(v) for v in VENUES]
    return sum(asyncio.run(end_offsets(bus.bootstrap, topics)).values())


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_hostile_request_gets_a_5xx_or_writes_when_refused(bus: Bus, method: str, template: str) -> None:
    raw_before, counted_before = _raw_total(bus), _events_accepted(bus)
    client = httpx.Client(timeout=60)
    values = _path_values(bus)

    @given(h=hostile_requests(), data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
              suppress_health_check=list(HealthCheck))
    def one(h: Hostile, data: st.DataObject) -> None:
        params = {p: data.draw(st.sampled_from(values[p]), label=p) for p in re.findall(r"{(\w+)", template)}
        path = re.sub(r"{(\w+)(:\w+)?}", lambda m: params[m.group(1)], template)
        headers: dict[str, str | bytes] = {**_auth_headers(bus, params.get("venue_id", VENUES[0]), h),
                                           "content-type": h.content_type}
        for name, value in h.extra_headers:
            headers[name] = value.encode()
        body: Any = h.body
        if h.chunked:
            body = iter([h.body[:1000], h.body[1000:]])
        url = f"{bus.gateway_url}{path}" + (f"?{h.query}" if h.query else "")
        try:
            resp = client.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:  # a dropped connection is a failure too
            bus.stack.check()
            raise AssertionError(f"{method} {path}: no answer ({exc!r})") from exc
        STATUSES[f"{method} {template} {resp.status_code}"] += 1
        assert resp.status_code < 500, (method, path, resp.status_code, resp.text[:300])
        if 400 <= resp.status_code < 500 and resp.headers.get("content-type", "").startswith("application/json"):
            assert resp.json().get("error"), resp.text[:300]

    try:
        one()
    finally:
        client.close()
    bus.stack.check()  # the gateway process is still up
    assert httpx.get(f"{bus.gateway_url}/healthz", timeout=10).status_code == 200
    written, counted = _raw_total(bus) - raw_before, _events_accepted(bus) - counted_before
    assert written == counted, f"{written} records on the raw topics, {counted} events accepted"
