"""Account for events end to end: audit decisions and partner-sink progress, read from Kafka.

:func:`collect_audit` reads ``techne.audit`` from the beginning until every expected
``event_id`` has a decision; :func:`wait_sinks_caught_up` waits until each partner sink's
committed offsets reach its topics' end offsets (a sink commits only after its insert, so at
that point the partner's store holds everything that was routed to it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from core.kafka_auth import env_kwargs
from core.topics import AUDIT, SHARED_STREAMS, partitions_of, partner_topic, venue_topic


def audit_lines(value: bytes | None) -> list[dict[str, Any]]:
    """The decision lines of one ``techne.audit`` record (NDJSON; see
    ``streams.processor.audit_record``). Lenient: what is not a JSON object (a stray producer's
    record) is not ours to account for and is skipped."""
    lines = []
    for line in (value or b"").split(b"\n"):
        try:
            decision = json.loads(line)
        except ValueError:
            continue
        if isinstance(decision, dict):
            lines.append(decision)
    return lines


async def collect_audit(bootstrap: str, expected: set[str], timeout: float) -> dict[str, list[dict[str, Any]]]:
    """Decisions per expected event id (missing ids are absent from the result on timeout)."""
    partitions = (await partitions_of(bootstrap, [AUDIT]))[AUDIT]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", **env_kwargs())
    await consumer.start()
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        consumer.assign([TopicPartition(AUDIT, p) for p in partitions])  # starts at "earliest"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not expected.issubset(found):
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                for m in messages:
                    for decision in audit_lines(m.value):
                        if decision.get("event_id") in expected:
                            found[decision["event_id"]].append(decision)
    finally:
        await consumer.stop()
    return dict(found)


async def sink_lag(bootstrap: str, partner: str, streams: tuple[str, ...] = SHARED_STREAMS) -> int:
    """Messages on ``partner.<partner>.<stream>`` (each of ``streams`` that exists) not yet
    committed by that partner's sink; for ``venue:<venue>``, on that venue's own store's topics
    (``venue.<venue>.<stream>``, exempt measurement included)."""
    if partner.startswith("venue:"):
        venue = partner.removeprefix("venue:")
        topics = [venue_topic(venue, stream) for stream in (*streams, "measurement")]
    else:
        topics = [partner_topic(partner, stream) for stream in streams]
    parts = await partitions_of(bootstrap, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **env_kwargs())
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for topic in topics for p in parts.get(topic, [])]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(f"techne-sink.{partner}", partitions=partitions)
        lag = 0
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, ends[tp] - done)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def wait_sinks_caught_up(bootstrap: str, partners: list[str], timeout: float,
                               poll: float = 0.5) -> dict[str, int]:
    """Poll until every partner's sink lag is 0 or ``timeout``; return the last lags."""
    deadline = time.monotonic() + timeout
    lags: dict[str, int] = {}
    while True:
        lags = {p: await sink_lag(bootstrap, p) for p in partners}
        if not any(lags.values()) or time.monotonic() > deadline:
            return lags
        await asyncio.sleep(poll)


async def group_lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages of ``topics`` not yet committed by consumer group ``group``."""
    parts = await partitions_of(bootstrap, topics)
    tps = [TopicPartition(t, p) for t, ps in parts.items() for p in ps]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **env_kwargs())
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        return sum(max(0, ends[tp] - max(0, committed[tp].offset if tp in committed else 0)) for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()
