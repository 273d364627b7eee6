"""The sink loop's state machine (commit after write, retry, pause, backpressure, revoke, drain).

These drive :class:`sinks.loop.SinkLoop` with an in-memory consumer and handler: they check the
ordering rules only. The proofs against the real broker and chDB are the integration tests
(``test_sink_faults.py``, ``test_sink_erasure.py``, the end-to-end test).
"""

from __future__ import annotations

import asyncio

import pytest

from core.dlq import InvalidRateGuard, PoisonFlood
from core.errors import InvalidMessage
from core.metrics import SINK
from sinks.loop import FlushResult
from sinks.records import MessageRef
from tests.support.fakes import OTHER, TOPIC, TP0, TP1, TPE, FakeHandler, make


def sample(name: str, **labels: str) -> float:
    return SINK.get_sample_value(name, labels) or 0.0


async def test_full_batches_are_written_then_committed_per_partition() -> None:
    handler = FakeHandler()
    flushed: list[FlushResult] = []
    loop, consumer, clock = make(handler, owner="p-size", on_batch=flushed.append)
    consumer.feed(TP0, b"a", b"b", b"c")
    consumer.feed(TP1, b"d")
    await loop.poll_once()
    await loop.flush_ready()
    assert consumer.commits == [{TP0: 3}]
    assert handler.written == [b"a", b"b", b"c"] and loop.buffered == 1
    (result,) = flushed
    assert (result.table, result.partition, result.first_offset, result.last_offset) == ("t", 0, 0, 2)
    assert result.inserted == 3
    clock.now += 1.0  # TP1's batch is now old enough
    await loop.flush_ready()
    assert consumer.commits[-1] == {TP1: 1}
    assert sample("techne_sink_rows_inserted_total", partner="p-size", table="t") == 4
    assert sample("techne_sink_batch_messages_count", partner="p-size", table="t") == 2


async def test_each_topic_goes_to_its_handler() -> None:
    orders, erasures = FakeHandler(), FakeHandler(OTHER, "erasures", batch_rows=1)
    loop, consumer, _ = make(orders, erasures, owner="p-route")
    consumer.feed(TPE, b"erase-me")
    consumer.feed(TP0, b"x")
    await loop.poll_once()
    await loop.flush_ready()
    assert erasures.written == [b"erase-me"] and orders.written == []
    assert consumer.commits == [{TPE: 1}]


async def test_invalid_messages_are_counted_handed_over_and_committed() -> None:
    seen: list[tuple[str, int]] = []

    async def on_invalid(exc: InvalidMessage, ref: MessageRef) -> None:
        seen.append((exc.reason, ref.offset))

    handler = FakeHandler()
    loop, consumer, _ = make(handler, owner="p-invalid", on_invalid=on_invalid)
    consumer.feed(TP0, b"ok", b"bad", None)
    await loop.poll_once()
    await loop.flush_ready()
    assert seen == [("bad", 1), ("bad", 2)]
    assert consumer.commits == [{TP0: 3}] and handler.written == [b"ok"]
    assert sample("techne_sink_undecodable_total", partner="p-invalid", table="t") == 2


async def test_a_flood_of_invalid_messages_stops_the_sink_before_emptying_the_topic() -> None:
    seen: list[int] = []

    async def on_invalid(exc: InvalidMessage, ref: MessageRef) -> None:
        seen.append(ref.offset)

    handler = FakeHandler(batch_rows=100)
    loop, consumer, _ = make(handler, owner="p-flood", on_invalid=on_invalid,
                             guard=InvalidRateGuard(window=20, threshold=0.5))
    consumer.feed(TP0, *[b"ok"] * 30)  # valid in bulk: the window fills with valid messages
    consumer.feed(TP1, *[b"ok", b"bad"] * 10)  # 50 %: not above the threshold
    await loop.poll_once()
    consumer.feed(TP1, *[b"bad"] * 30)
    with pytest.raises(PoisonFlood, match="of the last 20 messages were invalid"):
        await loop.poll_once()
    assert len(seen) == 10, "the first invalid message above the threshold stops the sink before its letter"
    await loop.flush_ready(force=True)
    assert all(TP1 not in c or c[TP1] <= 20 for c in consumer.commits), "nothing of the flood committed"


def test_bulk_valid_messages_slide_the_guard_window() -> None:
    guard = InvalidRateGuard(window=10, threshold=0.5)
    for _ in range(5):
        guard.record(True)
    guard.record_valid(5)  # 5 of 10 invalid: at the threshold, not above
    guard.record_valid(3)  # the 3 oldest invalid slide out
    for _ in range(3):
        guard.record(True)  # 2 + 3 = 5 invalid of 10
    guard.record_valid(20)  # a big valid poll resets the window
    for _ in range(5):
        guard.record(True)
    with pytest.raises(PoisonFlood):
        for _ in range(10):
            guard.record(True)


async def test_rows_refused_at_write_time_are_handed_over_before_the_commit() -> None:
    seen: list[int] = []

    async def on_invalid(exc: InvalidMessage, ref: MessageRef) -> None:
        assert consumer.commits == []  # before the commit
        seen.append(ref.offset)

    handler = FakeHandler()
    loop, consumer, _ = make(handler, owner="p-refused", on_invalid=on_invalid)
    consumer.feed(TP0, b"a", b"refused", b"c")
    await loop.poll_once()
    await loop.flush_ready()
    assert seen == [1] and handler.written == [b"a", b"c"] and consumer.commits == [{TP0: 3}]


async def test_store_failure_pauses_retries_same_batch_and_commits_only_after_success() -> None:
    handler = FakeHandler(failures=2)
    loop, consumer, clock = make(handler, owner="p-retry")
    consumer.feed(TP0, b"a", b"b", b"c")
    await loop.poll_once()
    assert not await loop.flush_ready()
    assert consumer.commits == [] and consumer.paused_tps == {TP0, TP1, TPE}
    assert sample("techne_sink_paused", partner="p-retry") == 1
    consumer.feed(TP0, b"d")
    await loop.poll_once()  # paused: nothing new arrives
    assert loop.buffered == 3
    clock.now += 0.1
    assert not await loop.flush_ready()  # backoff (0.2 s) not elapsed: no attempt
    assert handler.failures == 1
    clock.now += 0.15
    assert not await loop.flush_ready()  # second attempt fails, next delay 0.4 s
    clock.now += 0.3
    assert not await loop.flush_ready()
    assert handler.failures == 0
    clock.now += 0.15
    assert await loop.flush_ready()
    assert consumer.commits == [{TP0: 3}] and consumer.paused_tps == set()
    assert handler.tokens == [f"{TOPIC}-0-0-2"]
    assert sample("techne_sink_insert_errors_total", partner="p-retry", table="t") == 2
    assert sample("techne_sink_retries_total", partner="p-retry") == 2
    assert sample("techne_sink_paused", partner="p-retry") == 0


async def test_writes_run_in_the_background_with_backpressure_per_partition() -> None:
    handler = FakeHandler(batch_rows=2)
    handler.gate = asyncio.Event()
    loop, consumer, _ = make(handler, owner="p-pipe")
    consumer.feed(TP0, b"a", b"b")
    await loop.step()  # polls, seals, starts the writer (blocked on the gate)
    assert handler.written == [] and consumer.commits == []
    consumer.feed(TP0, *(bytes([c]) for c in b"cdefgh"))
    await loop.step()  # the next batch keeps growing while the first is being written
    assert TP0 not in consumer.paused_tps and loop.buffered == 8
    consumer.feed(TP0, b"i", b"j")
    await loop.step()  # GROW_CAP (4) batch sizes reached: TP0 is held, TP1 is not
    assert TP0 in consumer.paused_tps and TP1 not in consumer.paused_tps
    consumer.feed(TP0, b"k")
    await loop.step()
    assert loop.buffered == 10  # nothing fetched for the held partition
    handler.gate.set()
    for _ in range(5):
        await loop.step()
    await loop.drain(1.0)
    assert consumer.commits[:2] == [{TP0: 2}, {TP0: 10}] and consumer.commits[-1] == {TP0: 11}
    assert TP0 not in consumer.paused_tps
    assert handler.written == [bytes([c]) for c in b"abcdefghijk"]


async def test_lag_counts_what_is_not_committed() -> None:
    handler = FakeHandler(batch_rows=10)
    loop, consumer, _ = make(handler, owner="p-lag")
    consumer.feed(TP0, b"a", b"b")
    consumer.ends[TP0] = 7  # five more on the broker, not fetched yet
    await loop.poll_once()
    assert sample("techne_sink_lag_messages", partner="p-lag", topic=TOPIC, partition="0") == 7


async def test_revoked_partitions_lose_their_uncommitted_batches() -> None:
    handler = FakeHandler()
    loop, consumer, clock = make(handler, owner="p-revoke")
    consumer.feed(TP0, b"a")
    consumer.feed(TP1, b"b")
    await loop.poll_once()
    await loop.drop({TP0})
    consumer.assigned = {TP1}
    clock.now += 1.0
    await loop.flush_ready()
    assert consumer.commits == [{TP1: 1}] and handler.written == [b"b"] and loop.buffered == 0


async def test_failed_commit_keeps_going_rows_stay_once() -> None:
    handler = FakeHandler()
    flushed: list[FlushResult] = []
    loop, consumer, _ = make(handler, owner="p-commit", on_batch=flushed.append)
    consumer.fail_commit = True
    consumer.feed(TP0, b"a", b"b", b"c")
    await loop.poll_once()
    assert await loop.flush_ready()
    assert flushed[0].committed is False and loop.buffered == 0


async def test_drain_flushes_young_batches_on_stop() -> None:
    handler = FakeHandler(failures=1)
    loop, consumer, _ = make(handler, owner="p-drain")
    consumer.feed(TP0, b"a")
    consumer.feed(TP1, b"b", b"c")
    await loop.poll_once()
    await loop.drain(timeout_s=5.0)
    assert consumer.commits == [{TP0: 1, TP1: 2}]  # the two partitions' batches: one write, one commit
    assert len(handler.written) == 3 and handler.calls == 1


async def test_drain_gives_up_without_committing_when_the_store_stays_down() -> None:
    handler = FakeHandler(failures=1000)
    loop, consumer, _ = make(handler, owner="p-giveup")
    consumer.feed(TP0, b"a")
    await loop.poll_once()
    await loop.drain(timeout_s=0.3)
    assert consumer.commits == [] and loop.buffered == 1


async def test_run_stops_and_drains() -> None:
    handler = FakeHandler(batch_rows=100)
    loop, consumer, _ = make(handler, owner="p-run")
    consumer.feed(TP0, b"a", b"b")
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert consumer.commits == [{TP0: 2}] and handler.written == [b"a", b"b"]
