"""Shared by several test modules (tests never import each other)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from core.errors import InvalidMessage, StoreUnavailable
from sinks.base import Batch, Rejected, WriteResult
from sinks.loop import SinkLoop

TOPIC = "partner.p.ticketing"


OTHER = "partner.p.erasure"


TP0, TP1, TPE = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1), TopicPartition(OTHER, 0)


@dataclass
class Record:
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass
class FakeConsumer:
    assigned: set[TopicPartition] = field(default_factory=lambda: {TP0, TP1, TPE})
    pending: dict[TopicPartition, list[Record]] = field(default_factory=dict)
    paused_tps: set[TopicPartition] = field(default_factory=set)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    fail_commit: bool = False
    ends: dict[TopicPartition, int] = field(default_factory=dict)

    def feed(self, tp: TopicPartition, *values: bytes | None) -> None:
        start = self.ends.get(tp, 0)
        self.pending.setdefault(tp, []).extend(Record(start + i, v) for i, v in enumerate(values))
        self.ends[tp] = start + len(values)

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Record]]:
        out = {tp: recs for tp, recs in self.pending.items() if tp in self.assigned - self.paused_tps and recs}
        for tp in out:
            self.pending[tp] = []
        if not out:
            await asyncio.sleep(0)
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.fail_commit:
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused_tps.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_tps.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.ends.get(tp, 0)


class FakeHandler:
    """Items are the message values; ``b"bad"`` is invalid; ``b"refused"`` is rejected at write."""

    def __init__(self, topic: str = TOPIC, table: str = "t", failures: int = 0, batch_rows: int = 3) -> None:
        self.topic, self.table, self.failures = topic, table, failures
        self.batch_rows, self.batch_seconds = batch_rows, 1.0
        self.written: list[bytes] = []
        self.tokens: list[str] = []
        self.gate: asyncio.Event | None = None
        self.calls = 0

    def decode(self, value: bytes | None) -> bytes:
        if value is None or value == b"bad":
            raise InvalidMessage("decode", "bad", "test")
        return value

    async def write(self, batches: Sequence[Batch[bytes]]) -> list[WriteResult]:
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("down")
        self.calls += 1
        results = []
        for batch in batches:
            rejected = tuple(
                Rejected(batch.partition, o, InvalidMessage("row", "refused"), v)
                for o, v in zip(batch.offsets, batch.items, strict=True) if v == b"refused"
            )
            kept = [v for v in batch.items if v != b"refused"]
            self.written.extend(kept)
            self.tokens.append(batch.token())
            results.append(WriteResult(inserted=len(kept), rejected=rejected))
        return results


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(*handlers: FakeHandler, owner: str, **kw: object) -> tuple[SinkLoop, FakeConsumer, Clock]:
    consumer, clock = FakeConsumer(), Clock()
    loop = SinkLoop(owner, consumer, list(handlers), clock=clock, **kw)  # type: ignore[arg-type]
    return loop, consumer, clock
