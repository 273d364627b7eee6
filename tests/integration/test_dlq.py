"""Dead letters on the real broker: poison bytes go to dlq.decode with their reason and do not
stall the partition; `replay` re-injects each letter once; a flood of poison stops a worker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from core.topics import AUDIT, ensure_topics, raw_topic
from streams import dlq
from techne.accounting import collect_audit
from techne.stack import Stack
from tests.conftest import Bus
from tests.integration.kafka_helpers import end_offsets, read_all
from tests.support.events import order_payload, send

pytestmark = pytest.mark.integration


async def produce(bootstrap: str, topic: str, values: list[bytes], key: bytes = b"poison") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def wait_for(predicate, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_poison_goes_to_dlq_and_the_partition_keeps_flowing(worker: Bus) -> None:
    bus = worker
    before = len(asyncio.run(dlq.read(bus.bootstrap, "decode")))
    marker = uuid.uuid4().hex.encode()
    poison = [b"\x00\x00\x00\x03\xe9" + marker, b"plain text " + marker]
    asyncio.run(produce(bus.bootstrap, raw_topic("gemeaux"), poison))
    # a valid event sent after the poison, on the same topic, is still processed
    event_id = send(bus, "gemeaux", order_payload("chloe", 99))
    assert event_id in asyncio.run(collect_audit(bus.bootstrap, {event_id}, timeout=60))
    assert wait_for(lambda: len(asyncio.run(dlq.read(bus.bootstrap, "decode"))) >= before + 2)
    letters = [d for d in asyncio.run(dlq.read(bus.bootstrap, "decode")) if marker in d.value]
    assert sorted(d.value for d in letters) == sorted(poison), "original bytes kept"
    assert {d.headers["techne-reason"] for d in letters} == {"corrupt_body", "bad_magic"}
    assert {d.source_topic for d in letters} == {raw_topic("gemeaux")}
    assert all(marker.decode() not in line for line in asyncio.run(dlq.show(bus.bootstrap, "decode"))), \
        "show never prints payloads"

    raw_before = asyncio.run(end_offsets(bus.bootstrap, [raw_topic("gemeaux")]))[raw_topic("gemeaux")]
    # other tests may have dead letters from other raw topics: count this topic's pending ones
    pending = [d for d in asyncio.run(dlq.read(bus.bootstrap, "decode", group="techne-dlq-replay.decode"))
               if d.source_topic == raw_topic("gemeaux")]
    replayed = asyncio.run(dlq.replay(bus.bootstrap, "decode"))
    assert replayed >= len(pending) >= 2
    raw_after = asyncio.run(end_offsets(bus.bootstrap, [raw_topic("gemeaux")]))[raw_topic("gemeaux")]
    assert raw_after == raw_before + len(pending)
    # still poison: the worker dead-letters the replayed copies again; a second replay takes only
    # those new letters (progress of the first one was committed), never the first ones again
    assert wait_for(lambda: len([d for d in asyncio.run(dlq.read(bus.bootstrap, "decode")) if marker in d.value]) == 4)
    still = asyncio.run(dlq.read(bus.bootstrap, "decode", group="techne-dlq-replay.decode"))
    assert len([d for d in still if marker in d.value]) == 2
    assert sum(marker in v for v in asyncio.run(read_all(bus.bootstrap, raw_topic("gemeaux")))) == 4


def test_poison_flood_stops_the_worker_with_a_clear_error(bus: Bus, tmp_path: Path) -> None:
    venues = tmp_path / "venues.yaml"
    venues.write_text("venues:\n  - id: flood-venue\n    name: Flood\n")
    agreements = tmp_path / "agreements"
    agreements.mkdir()
    topic = raw_topic("flood-venue")
    asyncio.run(ensure_topics(bus.bootstrap, [topic, AUDIT], 3))
    env = {**bus.env, "TECHNE_VENUES_FILE": str(venues), "TECHNE_AGREEMENTS_DIR": str(agreements),
           "TECHNE_WORKER_ID": "techne-worker-flood", "TECHNE_POISON_WINDOW": "20",
           "TECHNE_DATA_DIR": str(tmp_path)}
    stack = Stack(env, tmp_path / "logs")
    try:
        service = stack.start_worker("flood-worker")
        asyncio.run(produce(bus.bootstrap, topic, [b"\xffpoison"] * 40))
        assert wait_for(lambda: service.proc.poll() is not None, timeout=90), stack.log_tail("flood-worker")
        assert service.proc.returncode != 0
        log = (tmp_path / "logs" / "flood-worker.log").read_text()
        assert "of the last 20 messages were invalid" in log
    finally:
        stack.stop_all()
    assert json.loads(env["TECHNE_VENUE_SECRETS"])  # the flood worker had the same secrets, none logged
    for secret in json.loads(env["TECHNE_VENUE_SECRETS"]).values():
        assert secret[0] not in log
