"""Dead letters of the sinks (:mod:`sinks.dlq`) through the sink loop, with an in-memory consumer
and producer: each invalid message is produced with its reason before the commit past it; a
produce that keeps failing stops the loop with nothing committed. The proof on the real broker
is ``tests/integration/test_sink_dlq.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaConnectionError

from core.errors import InvalidMessage
from core.metrics import SINK
from sinks.base import Backoff
from sinks.dlq import DeadLetters, headers
from sinks.records import MessageRef
from tests.support.fakes import TP0, FakeConsumer, FakeHandler, Record, make


class Producer:
    """Records what it sends and how many commits the consumer had made by then."""

    def __init__(self, failures: int = 0) -> None:
        self.consumer, self.failures = FakeConsumer(), failures
        self.sent: list[tuple[str, bytes | None, bytes | None, dict[str, bytes], int]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None, hdrs: list[tuple[str, bytes]]) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker down")
        self.sent.append((topic, value, key, dict(hdrs), len(self.consumer.commits)))


def no_wait() -> Backoff:
    return Backoff(0.0, 0.0)


def test_headers_follow_the_worker_convention() -> None:
    exc = InvalidMessage("decode", "bad_uuid", "event_id")
    at = datetime(2026, 6, 1, tzinfo=UTC)
    got = dict(headers(exc, MessageRef("partner.p.ticketing", 2, 41, b"x", b"k"), at))
    assert got == {
        "techne-stage": b"sink", "techne-reason": b"bad_uuid", "techne-detail": b"decode: event_id",
        "techne-source-topic": b"partner.p.ticketing", "techne-failed-at": at.isoformat().encode(),
        "techne-source-partition": b"2", "techne-source-offset": b"41",
    }


async def test_invalid_and_refused_messages_are_dead_lettered_before_the_commit() -> None:
    producer = Producer()
    loop, consumer, _ = make(FakeHandler(), owner="p-dlq", on_invalid=DeadLetters(producer.send, "p-dlq"))
    producer.consumer = consumer
    consumer.pending[TP0] = [Record(0, b"ok", b"k0"), Record(1, b"bad", b"k1"), Record(2, b"refused", b"k2")]
    consumer.ends[TP0] = 3
    before = SINK.get_sample_value("techne_dlq_total", {"stage": "sink", "reason": "bad"}) or 0.0
    await loop.poll_once()
    await loop.flush_ready()
    assert consumer.commits == [{TP0: 3}]
    assert [(t, v, k, h["techne-reason"], commits) for t, v, k, h, commits in producer.sent] == [
        ("dlq.sink", b"bad", b"k1", b"bad", 0),  # found when decoding: its key is kept
        ("dlq.sink", b"refused", b"k2", b"refused", 0),  # found when writing, before the commit
    ]
    assert SINK.get_sample_value("techne_dlq_total", {"stage": "sink", "reason": "bad"}) == before + 1


async def test_a_produce_that_keeps_failing_stops_the_loop_uncommitted() -> None:
    flaky = Producer(failures=2)
    loop, consumer, _ = make(FakeHandler(), owner="p-dlq-retry",
                             on_invalid=DeadLetters(flaky.send, "p-dlq-retry", backoff=no_wait))
    consumer.feed(TP0, b"ok", b"bad", b"ok2")
    await loop.poll_once()  # two failures, then delivered
    assert [v for _, v, *_ in flaky.sent] == [b"bad"]

    down = Producer(failures=100)
    loop, consumer, _ = make(FakeHandler(), owner="p-dlq-down",
                             on_invalid=DeadLetters(down.send, "p-dlq-down", attempts=3, backoff=no_wait))
    consumer.feed(TP0, b"ok", b"bad")
    with pytest.raises(KafkaConnectionError):
        await loop.poll_once()
    assert down.failures == 97 and consumer.commits == [] and down.sent == []
