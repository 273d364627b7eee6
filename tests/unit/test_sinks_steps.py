"""Each step of the sink chain on its own (sinks.steps); test_sinks_consumer.py keeps the whole
loop's behaviour as the spec."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from core.dlq import InvalidRateGuard, PoisonFlood
from core.errors import InvalidMessage, StoreUnavailable
from sinks.base import Backoff, Batch, WriteResult
from sinks.records import MessageRef
from sinks.steps.batching import GROW_CAP, POLL_MAX_S, PartitionBatches
from sinks.steps.commit import Commit
from sinks.steps.decode import DecodeStep
from sinks.steps.write import RetryingWrite

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


@dataclass
class Msg:
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass
class Decoder:
    table: str = "rows"
    bulk_calls: int = 0

    def decode(self, value: bytes | None) -> str:
        if value is None or value.startswith(b"bad"):
            raise InvalidMessage("decode", "bad", "not a row")
        return value.decode()

    def decode_many(self, values: list[bytes | None]) -> list[str]:
        self.bulk_calls += 1
        return [self.decode(v) for v in values]


@dataclass
class Letters:
    seen: list[tuple[str, MessageRef]] = field(default_factory=list)

    async def __call__(self, exc: InvalidMessage, ref: MessageRef) -> None:
        self.seen.append((exc.reason, ref))


async def test_decode_in_bulk_then_one_by_one_with_letters() -> None:
    letters = Letters()
    step = DecodeStep("p", letters)
    assert await step(Decoder(), "t", 0, [Msg(0, b"a"), Msg(1, b"b")]) == ["a", "b"]
    items = await step(Decoder(), "t", 0, [Msg(2, b"a"), Msg(3, b"bad", b"k"), Msg(4, b"c")])
    assert items == ["a", None, "c"]
    assert [(r, ref.offset, ref.key) for r, ref in letters.seen] == [("bad", 3, b"k")]


async def test_decode_guard_stops_before_the_letter_that_crosses_the_threshold() -> None:
    letters = Letters()
    step = DecodeStep("p", letters, InvalidRateGuard(window=10, threshold=0.5))
    with pytest.raises(PoisonFlood):
        await step(Decoder(), "t", 0, [Msg(i, b"bad") for i in range(10)])
    assert len(letters.seen) == 9  # the tenth (window full, all invalid) tripped the guard before its letter


def test_batches_seal_grow_hold_and_resume() -> None:
    b: PartitionBatches[str] = PartitionBatches("p")
    b.add(TP0, 2, 60.0, [0, 1], ["a", "b"], [None, None], now=0.0)
    assert b.seal(0.0, force=False) == [] and TP0 in b.sealed  # full: sealed
    for n in range(GROW_CAP):  # while it is written, the next one grows up to GROW_CAP sizes
        b.add(TP0, 2, 60.0, [2 + 2 * n, 3 + 2 * n], ["x", "y"], [None, None], now=1.0)
    assert b.seal(1.0, force=False) == [TP0] and TP0 in b.held  # then the partition is held
    tps, batches = b.take("t", {TP0})
    assert tps == [TP0] and batches[0].max_offset == 1
    assert b.done(tps, retrying=False) == [TP0] and b.buffered == 2 * GROW_CAP


def test_batches_rewind_drop_and_forget_revoked() -> None:
    b: PartitionBatches[str] = PartitionBatches("p")
    b.add(TP0, 10, 60.0, [5, 6], ["a", "b"], [None, None], now=0.0)
    b.add(TP0, 10, 60.0, [5], ["a"], [None], now=0.0)  # rewound: rebuilt from offset 5
    assert b.buffered == 1 and b.first_offset(TP0) == 5
    b.add(TP1, 1, 60.0, [0], ["z"], [None], now=0.0)
    b.seal(0.0, force=False)
    assert b.take("t", {TP0}) == ([], [])  # TP1 was sealed but is no longer assigned: forgotten
    assert b.drop([TP0]) == 1 and not b


def test_poll_timeout_follows_deadlines_retries_and_the_writer() -> None:
    b: PartitionBatches[str] = PartitionBatches("p")
    assert b.poll_timeout(0.0, None, writing=False) == POLL_MAX_S
    b.add(TP0, 10, 0.1, [0], ["a"], [None], now=0.0)
    assert b.poll_timeout(0.05, None, writing=False) == pytest.approx(0.05)
    assert b.poll_timeout(0.0, retry_at=0.02, writing=False) == pytest.approx(0.02)
    assert b.poll_timeout(0.0, None, writing=True) <= 0.01


@dataclass
class Store:
    down: int = 0
    table: str = "rows"

    async def write(self, batches: list[Batch[str]]) -> list[WriteResult]:
        if self.down:
            self.down -= 1
            raise StoreUnavailable("down")
        return [WriteResult(inserted=len(b.items)) for b in batches]


async def test_write_backs_off_on_unavailable_and_reports_the_recovery() -> None:
    now = [0.0]
    write = RetryingWrite("p", lambda: now[0], Backoff(0.2, 5.0))
    store, batch = Store(down=2), Batch[str]("t", 0, 10, 1.0)
    batch.add(0, "a", 0.0)
    assert await write(store, [batch]) is None
    write.failed()
    assert write.retry_at == pytest.approx(0.2) and not write.due()
    now[0] = 0.2
    assert await write(store, [batch]) is None
    write.failed()
    assert write.retry_at == pytest.approx(0.6)  # doubled
    now[0] = 0.6
    assert [r.inserted for r in await write(store, [batch]) or []] == [1]
    assert write.succeeded() and not write.retrying and not write.succeeded()


@dataclass
class Consumer:
    fail: bool = False
    hang: bool = False
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.hang:
            await asyncio.sleep(10)
        if self.fail:
            raise KafkaError("coordinator gone")
        self.commits.append(offsets)


async def test_commit_reports_failures_and_timeouts_without_raising() -> None:
    ok = Consumer()
    assert await Commit("p", ok)({TP0: 3}) and ok.commits == [{TP0: 3}]
    assert not await Commit("p", Consumer(fail=True))({TP0: 3})
    assert not await Commit("p", Consumer(hang=True), timeout_s=0.05)({TP0: 3})
