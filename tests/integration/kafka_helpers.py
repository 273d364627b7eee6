"""Small readers of the real broker used by integration tests."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from core.datakeys import MasterKeys
from core.topics import partitions_of
from streams.keystore import KeyStore


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Sum of end offsets per topic (how many records were ever written)."""
    parts = await partitions_of(bootstrap, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        out = {}
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in parts.get(topic, [])]
            ends = await consumer.end_offsets(tps) if tps else {}
            out[topic] = sum(ends.values())
        return out
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, isolation_level: str = "read_uncommitted") -> list[bytes]:
    """Every record value currently on ``topic`` (committed ones only with ``read_committed``)."""
    parts = await partitions_of(bootstrap, [topic])
    # A fresh assignment with auto_offset_reset="earliest" starts at the log start; an explicit
    # seek_to_beginning() right after assign() races with the initial reset in aiokafka.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level=isolation_level)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts.get(topic, [])]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        values: list[bytes] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(m.value for m in batch if m.value is not None)
        return values
    finally:
        await consumer.stop()


def decodable(values: list[bytes], bootstrap: str | None = None) -> list[dict[str, Any]]:
    """The records among ``values`` that decode; other tests put poison on shared raw topics.
    With ``bootstrap``, their sealed identifiers are opened with the session's data keys (the
    bus's own decoder: catalogue, key store, sealer); without, they stay tokens."""
    from core.errors import InvalidMessage
    from schemas import CATALOGUE
    from schemas.sealing import SEALER

    store = asyncio.run(key_store(bootstrap)) if bootstrap else None
    out = []
    for value in values:
        try:
            name, record = CATALOGUE.decode(value)
            if store is not None:
                SEALER.open(name, record, store.lookup_kid)
            out.append(record)
        except InvalidMessage:
            continue
    return out


async def key_store(bootstrap: str) -> KeyStore:
    """Every data key of the session's key topic (wrapped by the tests' master key), read once."""
    from tests.conftest import TEST_MASTER_KEY

    store = KeyStore(bootstrap, MasterKeys({1: TEST_MASTER_KEY}, 1))
    await store.start(tail=False)
    await store.stop()
    return store
