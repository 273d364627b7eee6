"""The sink loop's state machine (commit after write, retry, pause, revoke, drain).

These drive :class:`sinks.consumer.SinkLoop` with an in-memory consumer and store: they check
the ordering rules only. The proof against the real broker and chDB is the end-to-end test.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from prometheus_client import REGISTRY

from schemas.codec import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from sinks.consumer import FlushResult, SinkLoop
from sinks.ddl import Row
from sinks.records import MessageRef
from techne.errors import InvalidMessage, StoreUnavailable

TOPIC = "partner.p.ticketing"
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def message_value() -> bytes:
    return CATALOGUE.encode(
        SHARED_TICKET_ORDER,
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "ticket.order_placed",
            "occurred_at": datetime(2024, 3, 9, tzinfo=UTC),
            "received_at": datetime(2024, 3, 9, tzinfo=UTC),
            "venue_id": "opera-lyon",
            "agreement_id": "agr-1",
            "purpose": "research",
            "subject_pseudonym": "a" * 64,
            "pseudonym_key_version": 1,
        },
    )


@dataclass
class Record:
    offset: int
    value: bytes | None


@dataclass
class FakeConsumer:
    assigned: set[TopicPartition] = field(default_factory=lambda: {TP0, TP1})
    pending: dict[TopicPartition, list[Record]] = field(default_factory=dict)
    paused_tps: set[TopicPartition] = field(default_factory=set)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    fail_commit: bool = False

    def feed(self, tp: TopicPartition, *values: bytes | None) -> None:
        queue = self.pending.setdefault(tp, [])
        start = queue[-1].offset + 1 if queue else sum(len(c) for c in self.commits)
        queue.extend(Record(start + i, v) for i, v in enumerate(values))

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Record]]:
        out = {tp: recs for tp, recs in self.pending.items() if tp in self.assigned - self.paused_tps and recs}
        for tp in out:
            self.pending[tp] = []
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


class FlakyStore:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.rows: list[Row] = []
        self.tokens: list[str] = []

    def ensure_schema(self) -> None:
        return None

    def existing_event_ids(self, ids: Sequence[str]) -> set[str]:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("down")
        return {i for i in ids if i in {r["event_id"] for r in self.rows}}

    def insert(self, rows: Sequence[Row], dedup_token: str) -> None:
        self.tokens.append(dedup_token)
        self.rows.extend(rows)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return []

    def close(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_loop(store: FlakyStore, consumer: FakeConsumer, partner: str, clock: Clock, **kw: Any) -> SinkLoop:
    return SinkLoop(partner, store, consumer, batch_rows=3, batch_seconds=1.0, clock=clock, **kw)


def sample(name: str, partner: str) -> float:
    return REGISTRY.get_sample_value(name, {"partner": partner}) or 0.0


async def test_full_batches_are_written_then_committed_per_partition() -> None:
    consumer, store, clock = FakeConsumer(), FlakyStore(), Clock()
    flushed: list[FlushResult] = []
    loop = make_loop(store, consumer, "p-size", clock, on_batch=flushed.append)
    consumer.feed(TP0, *(message_value() for _ in range(3)))
    consumer.feed(TP1, message_value())
    await loop.poll_once()
    await loop.flush_ready()
    assert consumer.commits == [{TP0: 3}]
    assert len(store.rows) == 3 and loop.buffered == 1
    (result,) = flushed
    assert isinstance(result, FlushResult)
    assert (result.partition, result.first_offset, result.last_offset, result.inserted) == (0, 0, 2, 3)
    clock.now += 1.0  # TP1's batch is now old enough
    await loop.flush_ready()
    assert consumer.commits[-1] == {TP1: 1}
    assert sample("techne_sink_rows_inserted_total", "p-size") == 4


async def test_invalid_messages_are_counted_handed_over_and_committed() -> None:
    consumer, store, clock = FakeConsumer(), FlakyStore(), Clock()
    seen: list[tuple[str, int]] = []

    async def on_invalid(exc: InvalidMessage, ref: MessageRef) -> None:
        seen.append((exc.reason, ref.offset))

    loop = make_loop(store, consumer, "p-invalid", clock, on_invalid=on_invalid)
    consumer.feed(TP0, message_value(), b"garbage", None)
    await loop.poll_once()
    await loop.flush_ready()
    assert seen == [("bad_magic", 1), ("tombstone", 2)]
    assert consumer.commits == [{TP0: 3}] and len(store.rows) == 1
    assert sample("techne_sink_undecodable_total", "p-invalid") == 2


async def test_store_failure_pauses_retries_same_batch_and_commits_only_after_success() -> None:
    consumer, store, clock = FakeConsumer(), FlakyStore(failures=2), Clock()
    loop = make_loop(store, consumer, "p-retry", clock)
    consumer.feed(TP0, *(message_value() for _ in range(3)))
    await loop.poll_once()
    assert not await loop.flush_ready()
    assert consumer.commits == [] and consumer.paused_tps == {TP0, TP1}
    consumer.feed(TP0, message_value())
    await loop.poll_once()  # paused: nothing new arrives
    assert loop.buffered == 3
    clock.now += 0.1
    assert not await loop.flush_ready()  # backoff (0.2 s) not elapsed: no attempt
    assert store.failures == 1
    clock.now += 0.15
    assert not await loop.flush_ready()  # second attempt fails, next delay 0.4 s
    clock.now += 0.3
    assert not await loop.flush_ready()
    assert store.failures == 0
    clock.now += 0.15
    assert await loop.flush_ready()
    assert consumer.commits == [{TP0: 3}] and consumer.paused_tps == set()
    assert len(store.rows) == 3 and len(store.tokens) == 1
    assert store.tokens[0].startswith(f"{TOPIC}-0-0-2-")
    assert sample("techne_sink_insert_errors_total", "p-retry") == 2


async def test_revoked_partitions_lose_their_uncommitted_batches() -> None:
    consumer, store, clock = FakeConsumer(), FlakyStore(), Clock()
    loop = make_loop(store, consumer, "p-revoke", clock)
    consumer.feed(TP0, message_value())
    consumer.feed(TP1, message_value())
    await loop.poll_once()
    await loop.drop({TP0})
    consumer.assigned = {TP1}
    clock.now += 1.0
    await loop.flush_ready()
    assert consumer.commits == [{TP1: 1}] and len(store.rows) == 1 and loop.buffered == 0


async def test_failed_commit_keeps_going_rows_stay_once() -> None:
    consumer, store, clock = FakeConsumer(fail_commit=True), FlakyStore(), Clock()
    flushed: list[FlushResult] = []
    loop = make_loop(store, consumer, "p-commit", clock, on_batch=flushed.append)
    consumer.feed(TP0, *(message_value() for _ in range(3)))
    await loop.poll_once()
    assert await loop.flush_ready()
    assert flushed[0].committed is False and loop.buffered == 0


async def test_drain_flushes_young_batches_on_stop() -> None:
    consumer, store, clock = FakeConsumer(), FlakyStore(failures=1), Clock()
    loop = make_loop(store, consumer, "p-drain", clock)
    consumer.feed(TP0, message_value())
    consumer.feed(TP1, message_value(), message_value())
    await loop.poll_once()
    await loop.drain(timeout_s=5.0)
    assert sorted(consumer.commits, key=lambda c: next(iter(c)).partition) == [{TP0: 1}, {TP1: 2}]
    assert len(store.rows) == 3


async def test_drain_gives_up_without_committing_when_the_store_stays_down() -> None:
    consumer, store, clock = FakeConsumer(), FlakyStore(failures=1000), Clock()
    loop = make_loop(store, consumer, "p-giveup", clock)
    consumer.feed(TP0, message_value())
    await loop.poll_once()
    await loop.drain(timeout_s=0.3)
    assert consumer.commits == [] and loop.buffered == 1
