"""Dead letters: inspect and re-inject after a fix (``techne dlq show / replay``).

A dead letter on ``dlq.<stage>`` holds the original message bytes as its value and, in
headers, the stage, a reason code, a detail, the source topic and the failure time. Stages:
``decode`` and ``route`` (the worker, :func:`streams.processor.dead_letter`) and ``sink`` (what a
partner or audit sink cannot store, :mod:`sinks.dlq`; replayed into the partner topic).
:func:`show` lists them without their payload (it may hold personal data). :func:`replay`
re-produces each selected dead letter's original bytes and key to its source topic and
commits its progress under the consumer group ``techne-dlq-replay.<stage>`` only after the
broker acknowledged the writes, so running it twice does not re-inject the same letters.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from core.dlq import DETAIL, FAILED_AT, REASON, REPLAYED_FROM, SOURCE_TOPIC
from core.kafka_auth import env_kwargs
from core.topics import dlq_topic, partitions_of


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def source_topic(self) -> str:
        return self.headers.get(SOURCE_TOPIC, "")

    def describe(self) -> str:
        h = self.headers
        return (f"{self.topic}[{self.partition}]@{self.offset} from {self.source_topic or '?'} "
                f"at {h.get(FAILED_AT, '?')}: {h.get(REASON, '?')} — "
                f"{h.get(DETAIL, '')} ({len(self.value)} bytes)")


async def read(bootstrap: str, stage: str, *, group: str | None = None, limit: int | None = None) -> list[DeadLetter]:
    """Dead letters of ``stage`` from the start (or from ``group``'s committed position)."""
    topic = dlq_topic(stage)
    parts = (await partitions_of(bootstrap, [topic])).get(topic, [])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", **env_kwargs())
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for m in batch:
                    if m.offset >= ends[TopicPartition(m.topic, m.partition)]:
                        continue
                    headers = {k: v.decode(errors="replace") for k, v in m.headers}
                    letters.append(DeadLetter(m.topic, m.partition, m.offset, m.key, m.value or b"", headers))
            if limit is not None and len(letters) >= limit:
                break
        return letters[:limit] if limit is not None else letters
    finally:
        await consumer.stop()


async def show(bootstrap: str, stage: str, limit: int = 50) -> list[str]:
    return [letter.describe() for letter in await read(bootstrap, stage, limit=limit)]


async def replay(bootstrap: str, stage: str, *, reason: str | None = None, dry_run: bool = False) -> int:
    """Re-inject the not-yet-replayed dead letters of ``stage`` (optionally one reason only)."""
    group = f"techne-dlq-replay.{stage}"
    letters = await read(bootstrap, stage, group=group)
    chosen = [d for d in letters if d.source_topic and (reason is None or d.headers.get(REASON) == reason)]
    if dry_run or not letters:
        return len(chosen)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **env_kwargs())
    await producer.start()
    try:
        for letter in chosen:
            await producer.send_and_wait(letter.source_topic, value=letter.value, key=letter.key,
                                         headers=[(REPLAYED_FROM, f"{letter.topic}@{letter.offset}".encode())])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **env_kwargs())
    await consumer.start()
    try:
        last: dict[TopicPartition, int] = {}
        for letter in letters:
            tp = TopicPartition(letter.topic, letter.partition)
            last[tp] = max(last.get(tp, -1), letter.offset)
        consumer.assign(list(last))
        await consumer.commit({tp: offset + 1 for tp, offset in last.items()})
    finally:
        await consumer.stop()
    return len(chosen)
