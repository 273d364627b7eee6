"""Read a venue's raw topic with record headers (how each event was authenticated)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from core.errors import InvalidMessage
from core.topics import partitions_of, raw_topic
from schemas import CATALOGUE
from schemas.sealing import SEALER
from tests.conftest import Bus
from tests.integration.kafka_helpers import key_store


async def records_and_headers(bootstrap: str, venue: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    topic = raw_topic(venue)
    parts = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    store = await key_store(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts[topic]]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        out = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for m in batch:
                    try:  # other tests put poison on the shared raw topics
                        name, record = CATALOGUE.decode(m.value or b"")
                        SEALER.open(name, record, store.lookup_kid)  # the bus's own decoder
                    except InvalidMessage:
                        continue
                    out.append((record, {k: v.decode() for k, v in m.headers}))
        return out
    finally:
        await consumer.stop()


def records_with_source(bus: Bus, venue: str, source_system: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    records = asyncio.run(records_and_headers(bus.bootstrap, venue))
    return [r for r in records if r[0].get("source_system") == source_system]
