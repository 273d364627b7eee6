"""Vendor payloads and API answers of the wrong shape: a clear refusal, never an unhandled error.

A push whose list fields are not lists must be a 422 (``PayloadRejected``), not a 500; a poll
round against an API that fails, refuses or answers something else than its documented shape
must fail with a typed error saying whether to retry (``Unavailable``) or to fix something
(``Refused``), so that ``techne connector poll`` keeps polling and exits 1 / 2 as documented.
The HTTP answers here come from httpx's in-memory transport (a unit test of the error mapping;
the connectors themselves are proven against the vendor simulator in tests/integration).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import PayloadRejected, Refused, Unavailable
from core.settings import Settings
from producers import poll
from producers.adapters import PUSH
from producers.adapters.billetweb import attendee_opt_ins, map_attendee
from producers.adapters.weezevent import map_participant, participant_opt_ins
from producers.csv_import import run_import
from producers.csv_profiles import load_profile
from producers.kafka import EventProducer
from producers.spreadsheet import read_table

NOT_A_LIST = [5, "x", {"a": 1}, True]
PUSHES: list[tuple[str, dict[str, Any]]] = [
    ("helloasso", {"eventType": "Order", "data": {"id": 1, "items": None}}),
    ("helloasso", {"eventType": "Order", "data": {"id": 1, "items": [{"customFields": None}]}}),
    ("secutix", {"notificationType": "ORDER_CLOSED", "order": {"orderId": 1, "items": None}}),
    ("secutix", {"notificationType": "ORDER_REFUNDED", "order": {"orderId": 1, "items": None}}),
    ("secutix", {"notificationType": "ACCESS_CONTROL", "scans": None}),
    ("secutix", {"notificationType": "CONTACT_UPDATED", "contact": {"optIns": None}}),
    ("secutix", {"notificationType": "ORDER_CLOSED",
                 "order": {"orderId": 1, "items": [{"price": 1}], "contact": {"optIns": None}}}),
]


def _with(payload: Any, value: Any) -> Any:
    """``payload`` with its ``None`` (the list field under test) replaced by ``value``."""
    if payload is None:
        return value
    if isinstance(payload, dict):
        return {k: _with(v, value) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_with(v, value) for v in payload]
    return payload


@pytest.mark.parametrize(("source", "payload"), PUSHES)
@pytest.mark.parametrize("value", NOT_A_LIST)
def test_a_push_with_a_non_list_where_a_list_is_expected_is_refused(source: str, payload: dict[str, Any],
                                                                    value: Any) -> None:
    body = json.dumps(_with(payload, value)).encode()
    adapter = PUSH[source]
    with pytest.raises(PayloadRejected, match="must be a list"):
        adapter.events(body)
        adapter.opt_ins(body)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=10)


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(PUSHES) - 1), value=JSON)
def test_any_value_in_a_list_field_is_mapped_or_refused(index: int, value: Any) -> None:
    source, payload = PUSHES[index]
    body = json.dumps(_with(payload, value)).encode()
    for mapping in (PUSH[source].events, PUSH[source].opt_ins):
        with contextlib.suppress(PayloadRejected):  # anything else fails the test
            mapping(body)


@given(value=JSON)
@settings(max_examples=200, deadline=None)
def test_any_polled_object_is_mapped_or_refused(value: Any) -> None:
    for mapping in (attendee_opt_ins, lambda a: map_attendee(a, {}), participant_opt_ins,
                    lambda p: map_participant(p, {}), lambda p: participant_opt_ins({"answers": p})):
        with contextlib.suppress(PayloadRejected):  # anything else fails the test
            mapping(value)


SECRET = "partner-key:organizer-token-s3cr3t"


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, subject_key="k" * 32, datakey_master_keys={1: "m" * 32},
                    source_secrets={"gemeaux": {"weezevent": [SECRET], "billetweb": [SECRET]}},
                    consent_sources_file=tmp_path / "none.yaml")


def _round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
           handler: Any) -> PayloadRejected | Refused | Unavailable | BaseException:
    real = httpx.AsyncClient
    monkeypatch.setattr(poll.httpx, "AsyncClient",
                        lambda **kw: real(transport=httpx.MockTransport(handler), **kw))
    producer = EventProducer("127.0.0.1:1")  # never started: a failed round sends nothing
    with pytest.raises(BaseException) as caught:
        asyncio.run(poll.poll_once(_settings(tmp_path), "gemeaux", source, "http://vendor.test", producer))
    assert not (tmp_path / "connectors" / f"gemeaux-{source}.json").exists()  # cursor kept
    assert SECRET.split(":")[1] not in str(caught.value)
    return caught.value


@pytest.mark.parametrize("source", ["weezevent", "billetweb"])
@pytest.mark.parametrize(("answer", "expected"), [
    (httpx.Response(503, text="maintenance"), Unavailable),
    (httpx.Response(429, text="slow down"), Unavailable),
    (httpx.Response(401, json={"error": "invalid credentials"}), Refused),
    (httpx.Response(200, text="<html>maintenance</html>"), PayloadRejected),
    (httpx.Response(200, json={"events": 5}), PayloadRejected),
])
def test_a_failed_poll_round_says_whether_to_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                                   answer: httpx.Response, expected: type[Exception]) -> None:
    if source == "billetweb" and answer.status_code == 200 and answer.text.startswith("{"):
        answer = httpx.Response(200, json={"not": "a list"})
    error = _round(tmp_path, monkeypatch, source, lambda request: answer)
    assert isinstance(error, expected), repr(error)
    assert not (expected is Refused and isinstance(error, Unavailable))


def test_an_unreachable_vendor_api_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert isinstance(_round(tmp_path, monkeypatch, "weezevent", refuse), Unavailable)


def test_an_import_with_kafka_unreachable_is_unavailable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, subject_key="k" * 32, datakey_master_keys={1: "m" * 32},
                        bootstrap="127.0.0.1:1")
    venue = "opera-lyon"
    profile = load_profile("consentements", settings.import_profiles_dir)
    table = read_table(b"x\n", "x.csv")
    with pytest.raises(Unavailable, match="Kafka unreachable"):
        asyncio.run(run_import(settings, table, venue, profile))


def test_a_failed_batch_says_how_many_records_kafka_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused records are not 'pending': the message counted only those that timed out ('0 of 2')."""
    from aiokafka.errors import KafkaTimeoutError

    from producers.ingest import Prepared

    async def refused(self: EventProducer, topic: str, key: bytes, value: bytes, headers: Any = None) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(KafkaTimeoutError())
        return future

    monkeypatch.setattr(EventProducer, "enqueue", refused)
    records = [Prepared("raw.v", b"k", b"v", str(i), "ticket.order_placed", "v", "test") for i in range(2)]
    with pytest.raises(Unavailable, match=r"did not acknowledge 2 of 2 records \(KafkaTimeoutError\)"):
        asyncio.run(EventProducer("127.0.0.1:1").send_batch(records))
