"""The parsing door (core/door.py) and the gateway's middleware around it (producers/gateway/http.Door).

Each hostile shape is refused with its own code and the limit it breaks; arbitrary bytes never
raise anything but :class:`Refused`; documents within the limits parse exactly as ``json.loads``
does; an exception escaping a route of the real gateway app is a counted 500 problem answer
whose log line holds no input.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.routing import Route

from core import errors, metrics
from core.door import LIMITS, Refused, parse_json, parse_ndjson, parse_params
from core.errors import ConfigError
from core.settings import Settings
from producers.gateway import create_app
from producers.gateway.collector import site_index

HOSTILE = [
    (b"[" * 33 + b"]" * 33, 400, "too_deep", "depth"),
    (b'{"a":' * 1000 + b"1" + b"}" * 1000, 400, "too_deep", "depth"),
    (b'{"q": ' + b"9" * 5000 + b"}", 400, "number_too_long", "number_chars"),
    (b"[-" + b"1" * 41 + b"]", 400, "number_too_long", "number_chars"),
    (b"[1." + b"0" * 60 + b"]", 400, "number_too_long", "number_chars"),
    (b"[1e999]", 400, "non_finite_number", None),
    (b"[-1E400]", 400, "non_finite_number", None),
    (b"[NaN]", 400, "non_finite_number", None),
    (b'{"a": -Infinity}', 400, "non_finite_number", None),
    (b'{"a": 1, "a": 2}', 400, "duplicate_key", None),
    (b'{"a": "\\ud800"}', 400, "invalid_text", None),
    (b'{"\\udfff": 1}', 400, "invalid_text", None),
    (b'"\xed\xa0\x80"', 400, "malformed_json", None),  # a surrogate encoded in UTF-8
    (b'"\xc0\xaf"', 400, "malformed_json", None),  # an overlong encoding
    (b"\xff\xfe[\x001\x00]\x00", 400, "malformed_json", None),  # UTF-16 with its BOM
    (b"\xef\xbb\xbf{}", 400, "malformed_json", None),  # a UTF-8 BOM
    (json.dumps({"s": "x" * 70_000}).encode(), 400, "string_too_long", "string_chars"),
    (json.dumps({"x" * 70_000: 1}).encode(), 400, "string_too_long", "string_chars"),
    (json.dumps({f"k{i}": i for i in range(1001)}).encode(), 400, "too_many_keys", "keys"),
    (json.dumps(list(range(10_001))).encode(), 413, "too_many_items", "items"),
    (b"[1,]", 400, "malformed_json", None),
    (b"{} {}", 400, "malformed_json", None),
    (b"", 400, "malformed_json", None),
]


@pytest.mark.parametrize(("body", "status", "error", "limit"), HOSTILE)
def test_each_hostile_shape_is_refused_naming_its_limit(body: bytes, status: int, error: str,
                                                        limit: str | None) -> None:
    with pytest.raises(Refused) as refused:
        parse_json(body)
    assert (refused.value.status, refused.value.error, refused.value.limit) == (status, error, limit)
    if limit is not None:
        assert refused.value.extra == {"limit": limit, "max": getattr(LIMITS, limit)}
        assert str(getattr(LIMITS, limit)) in refused.value.detail


@pytest.mark.parametrize(("body", "named"), [
    (b"\xef\xbb\xbf{}", "UTF-8 with a byte order mark"), (b"\xff\xfe[\x001\x00]\x00", "UTF-16"),
    (b"\xfe\xff\x00[\x001\x00]", "UTF-16"), ("{}".encode("utf-32"), "UTF-32"),
    (b"[\x001\x00]\x00", "UTF-16"),  # UTF-16 without a BOM: NUL bytes between ASCII ones
])
def test_a_body_in_another_unicode_encoding_is_refused_naming_it(body: bytes, named: str) -> None:
    with pytest.raises(Refused) as err:
        parse_json(body)
    assert err.value.error == "malformed_json" and named in err.value.detail and "UTF-8" in err.value.detail


def test_what_is_within_the_limits_parses() -> None:
    assert parse_json(b"[" * 32 + b"]" * 32) is not None
    assert parse_json(b'"' + b"[" * 50 + b'"') == "[" * 50  # brackets in a string
    assert parse_json(b'["\\ud83c\\udfad", "\\"[[["]') == ["\U0001f3ad", '"[[[']  # an escaped pair is text
    assert parse_json(b"[" + b"9" * 40 + b", 1.5e300]") == [int("9" * 40), 1.5e300]


def test_ndjson_lines_are_refused_one_by_one() -> None:
    items = parse_ndjson(b'{"a": 1}\n' + b"[" * 40 + b"]" * 40 + b'\n\n{"a": NaN}\n')
    assert items[0] == {"a": 1}
    assert [(i.error if isinstance(i, Refused) else i) for i in items[1:]] == ["too_deep", "non_finite_number"]
    with pytest.raises(Refused, match="more than 10000 lines"):
        parse_ndjson(b"1\n" * 10_001)


def test_query_strings_are_bounded() -> None:
    assert parse_params("?idsite=7&rec=1&url=a%26b") == {"idsite": "7", "rec": "1", "url": "a&b"}
    with pytest.raises(Refused) as refused:
        parse_params("&".join(f"p{i}=1" for i in range(201)))
    assert (refused.value.error, refused.value.limit, refused.value.maximum) == ("too_many_params", "params", 200)
    with pytest.raises(Refused, match="longer than 65536"):
        parse_params("url=" + "a" * 70_000)
    assert parse_params("x=%ED%A0%80") == {"x": "\ufffd\ufffd\ufffd"}  # never a lone surrogate


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False,
                    allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                                max_size=5),
                    max_leaves=30)


@given(JSON)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_documents_within_the_limits_parse_like_json_loads(value: object) -> None:
    body = json.dumps(value).encode()
    assert parse_json(body) == json.loads(body)


@given(st.binary(max_size=300) | st.builds(lambda parts: b"".join(parts), st.lists(st.sampled_from(
    [b"[", b"]", b"{", b"}", b'"', b"\\", b"\\u", b"d800", b":", b",", b"1", b"e999", b"-", b".", b"NaN",
     b"\xff", b"\xed\xa0\x80", b'"a"', b"\n", b"99999999999999999999999999999"]), max_size=200)))
@settings(max_examples=1000)
def test_no_byte_string_raises_anything_but_refused(body: bytes) -> None:
    for parse in (parse_json, parse_ndjson):
        try:
            parse(body)
        except Refused as exc:
            assert 400 <= exc.status < 500 and exc.error and exc.detail


def test_numeric_site_ids_are_checked() -> None:
    sites = {"site_a": {"venue": "mixt", "id": "7"}, "site_b": {"venue": "mixt"}}
    assert site_index(sites)["7"] is sites["site_a"]
    for bad in ("0", "-1", "7a", "٣"):
        with pytest.raises(ConfigError, match="positive integer"):
            site_index({"site_a": {"venue": "mixt", "id": bad}})
    with pytest.raises(ConfigError, match="already names"):
        site_index({"site_a": {"venue": "mixt", "id": "7"}, "site_b": {"venue": "mixt", "id": "7"}})


def test_an_exception_in_a_route_is_a_counted_500_without_input_in_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(data_dir=tmp_path, subject_key="k" * 32, datakey_master_keys={1: "m" * 32}))

    async def broken(request: Request) -> None:
        raise ValueError("invalid literal: lea.martin@exemple.fr")

    app.router.routes.insert(0, Route("/v1/venues/{venue_id}/broken", broken, methods=["POST"]))
    counter = metrics.INGESTED.labels(venue="opera-lyon", status="500")
    before = counter._value.get()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.post("/v1/venues/opera-lyon/broken", content=b'{"a": 1}')

    with caplog.at_level(logging.ERROR, logger="techne.gateway"):
        resp = asyncio.run(call())
    assert resp.status_code == 500
    assert resp.json()["error"] == "internal_error"
    assert counter._value.get() == before + 1
    assert "ValueError" in caplog.text and "/v1/venues/{venue_id}/broken" in caplog.text
    assert "lea.martin" not in caplog.text


def test_the_schema_registry_api_parses_through_the_door_too() -> None:
    """Its POST routes read a JSON body and a schema text inside it: a deep or huge one was a 500."""
    from starlette.testclient import TestClient

    from schemas.registry_api import create_app as registry_app

    http = TestClient(registry_app(partners=["observatoire"]), raise_server_exceptions=False)
    subject = "org.techne.partner.SharedTicketOrder"
    deep = b"[" * 5000 + b"]" * 5000
    for path in (f"/subjects/{subject}", f"/subjects/{subject}/versions"):
        for body in (deep, b'{"schema": ' + b"9" * 5000 + b"}", json.dumps({"schema": deep.decode()}).encode(),
                     json.dumps({"schema": '{"type": ' * 3000 + '"int"' + "}" * 3000}).encode()):
            resp = http.post(path, content=body, headers={"content-type": "application/json"})
            assert resp.status_code == 422 and resp.json()["error_code"] == 42201, (path, resp.text[:200])
            assert "nest deeper" in resp.json()["message"] or "longer than" in resp.json()["message"]
        big = http.post(path, content=b'{"schema": "' + b"x" * 1_100_000 + b'"}')
        assert big.status_code == 413 and big.json()["error_code"] == 41301


@given(st.text(alphabet=st.characters(codec=None), max_size=400) | st.builds(
    lambda n, v: "&".join(f"p{i}={v}" for i in range(n)), st.integers(0, 400), st.sampled_from(["", "%", "%zz", "²"])))
@settings(max_examples=500)
def test_no_query_string_raises_anything_but_refused(query: str) -> None:
    try:
        params = parse_params(query)
    except Refused as exc:
        assert exc.error in ("too_many_params", "param_too_long")
        return
    assert len(params) <= LIMITS.params and all(isinstance(v, str) for v in params.values())


def test_a_door_refusal_is_a_refusal_of_the_one_exception_tree() -> None:
    with pytest.raises(errors.Refused) as refused:  # the CLI's handler and `except Refused` catch it
        parse_json(b'{"a": 1, "a": 2}')
    assert isinstance(refused.value, Refused) and refused.value.status == 400
    assert not isinstance(refused.value, errors.Unavailable)


def test_an_unknown_route_or_method_is_a_problem_answer(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, subject_key="k" * 32, datakey_master_keys={1: "m" * 32}))

    async def call(method: str, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, path)

    wrong = asyncio.run(call("GET", "/v1/venues/opera-lyon/events"))
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json() == {"error": "method_not_allowed", "detail": "this route answers POST"}
    missing = asyncio.run(call("POST", "/v1/venue/opera-lyon/events"))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found" and "/docs" in missing.json()["detail"]


def test_a_replayed_delivery_gets_its_first_status_again() -> None:
    from producers.gateway.events import replayed

    assert replayed("opera-lyon", {"status": "accepted", "event_ids": []}).status_code == 200  # nothing recorded
    assert replayed("opera-lyon", {"status": "accepted", "event_ids": ["e"]}).status_code == 202
    assert replayed("opera-lyon", {"status": "accepted", "event_id": "e"}).status_code == 202
