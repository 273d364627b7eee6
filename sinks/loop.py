"""The sink loop: messages -> per-partition batches -> ``handler.write`` -> commit (generic).

It wires the steps of :mod:`sinks.steps` (decode, batching, write with backoff, commit) around one
consumer; each step is unit-tested on its own, this module holds only the order of the chain,
the background writer and the consumer's pause/resume.

A :class:`Handler` owns one topic: a pure ``decode(value) -> item`` (raising
:class:`InvalidMessage`), optionally a bulk ``decode_many(values) -> items`` (the same items, or
:class:`InvalidMessage` if any value is invalid; the loop then decodes one by one), and an
awaitable ``write(batches) -> [WriteResult]`` (raising :class:`StoreUnavailable` when the store
cannot take them now). :class:`SinkLoop` runs any number
of handlers over one subscribed consumer. Its contract:

- an offset is committed only after the batch holding it was written, and only for that
  batch's partition (``max_offset + 1``); auto-commit is off;
- a message that cannot become an item is counted, handed to ``on_invalid`` (awaited; default:
  log the reason, never the payload) and skipped; its offset is committed with its batch. So
  are messages a write reports as :class:`~sinks.base.Rejected`, before the commit. With a
  ``guard`` (:class:`~core.dlq.InvalidRateGuard`, as the worker's), a flood of invalid
  messages (e.g. a worker deployed with a schema the sink does not know) raises
  :class:`~core.dlq.PoisonFlood` before the message that crosses the threshold is
  handed over: the sink stops with its open batches uncommitted instead of emptying a topic
  into ``dlq.sink``;
- a batch is sealed when it holds ``handler.batch_rows`` messages or its first message is
  ``handler.batch_seconds`` old. Sealed batches are written by one background writer while
  polling goes on (the store works while Python decodes the next batch); the sealed batches of
  one topic (one per partition) go to the handler together, i.e. one insert, so a store gets
  fewer, larger parts however many partitions there are; their offsets are committed together.
  At most one sealed and one open batch per partition: while a partition's batch is being
  written, its next batch keeps filling (a slow store gets bigger inserts) up to
  :data:`GROW_CAP` batch sizes, then the partition is paused (explicit backpressure);
- when a write fails, nothing is committed or dropped: every assigned partition is paused and
  the *same* batches are retried with capped exponential backoff (0.2 s doubling to 5 s) while
  the loop keeps polling (group membership stays alive); consumption resumes after a
  successful write. Visible in ``techne_sink_insert_errors_total``, ``_retries_total``,
  ``_paused`` and ``_lag_messages``;
- on partition revocation, batches of revoked partitions are dropped (not committed, they are
  redelivered to the new owner); a write in progress finishes first;
- ``on_batch`` (if given) gets a :class:`FlushResult` per written batch; ``committed`` is false
  when the offset commit failed after the write (the redelivery is then deduplicated);
- when ``stop`` is set, buffered batches are written (retrying for up to
  :data:`SHUTDOWN_FLUSH_S`) and committed. Stores and consumer are the caller's to close.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiokafka import ConsumerRebalanceListener, TopicPartition

from core.dlq import InvalidRateGuard
from sinks import metrics
from sinks.base import Batch, WriteResult
from sinks.records import InvalidHandler, MessageRef, log_invalid
from sinks.steps.batching import GROW_CAP, POLL_MAX_S, WRITER_POLL_S, PartitionBatches
from sinks.steps.commit import COMMIT_TIMEOUT_S, Commit
from sinks.steps.decode import DecodeStep
from sinks.steps.write import RetryingWrite

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["COMMIT_TIMEOUT_S", "GROW_CAP", "POLL_MAX_S", "WRITER_POLL_S", "FlushResult", "Handler", "SinkLoop"]
SHUTDOWN_FLUSH_S = 10.0
LAG_EVERY_S = 1.0


class Handler(Protocol[T]):
    """One topic's decode step and batch write (see module doc)."""

    topic: str
    table: str
    batch_rows: int
    batch_seconds: float

    def decode(self, value: bytes | None) -> T: ...

    async def write(self, batches: Sequence[Batch[T]]) -> list[WriteResult]:
        """Write batches of distinct partitions of ``topic`` together; one result per batch."""
        ...


@dataclass(frozen=True)
class FlushResult:
    """What one written batch did (passed to ``on_batch``)."""

    partner: str
    table: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    messages: int
    inserted: int
    duplicates: int
    suppressed: int
    committed: bool


BatchCallback = Callable[[FlushResult], Awaitable[None] | None]


class _DropRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: SinkLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._loop.drop(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None


class SinkLoop:
    """The chain poll -> decode -> batch -> write -> commit over an already subscribed consumer."""

    def __init__(
        self,
        owner: str,
        consumer: Any,
        handlers: Sequence[Handler[Any]],
        *,
        on_batch: BatchCallback | None = None,
        on_invalid: InvalidHandler = log_invalid,
        clock: Callable[[], float] = time.monotonic,
        guard: InvalidRateGuard | None = None,
    ) -> None:
        self.owner, self._consumer, self._clock = owner, consumer, clock
        self._handlers = {h.topic: h for h in handlers}
        self._max_records = max(h.batch_rows for h in handlers)
        self._on_batch = on_batch
        self._decode = DecodeStep(owner, on_invalid, guard)
        self._batches: PartitionBatches[Any] = PartitionBatches(owner)
        self._write = RetryingWrite(owner, clock)
        self._commit = Commit(owner, consumer)
        self._lock = asyncio.Lock()
        self._writer: asyncio.Task[bool] | None = None
        self._lag_at = 0.0

    @property
    def topics(self) -> list[str]:
        return list(self._handlers)

    def listener(self) -> ConsumerRebalanceListener:
        return _DropRevoked(self)

    @property
    def buffered(self) -> int:
        """Messages consumed but not yet committed."""
        return self._batches.buffered

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step()
        await self.drain(SHUTDOWN_FLUSH_S)

    async def step(self) -> None:
        """Poll, seal the ready batches, start the writer if it is idle."""
        self._reap()
        await self.poll_once()
        self._seal(self._clock(), force=False)
        if self._batches.sealed and not self._writing() and self._write.due():
            self._writer = asyncio.create_task(self.write_sealed())
        await asyncio.sleep(0)  # getmany may return without suspending: let commits and heartbeats run

    def _writing(self) -> bool:
        return self._writer is not None and not self._writer.done()

    def _reap(self) -> None:
        if self._writer is not None and self._writer.done():
            writer, self._writer = self._writer, None
            writer.result()  # re-raise an unexpected failure: the sink stops, nothing more is committed

    async def drop(self, revoked: Iterable[TopicPartition]) -> None:
        """Forget uncommitted batches of ``revoked`` partitions (after any write in progress)."""
        async with self._lock:
            count = self._batches.drop(revoked)
        if count:
            log.info("%s: %d uncommitted messages of revoked partitions dropped", self.owner, count)

    async def poll_once(self) -> None:
        """One ``getmany``; every message is decoded and added to its partition's open batch."""
        if self._write.retrying:
            self._consumer.pause(*self._consumer.assignment())
        timeout = self._batches.poll_timeout(self._clock(), self._write.retry_at, self._writing())
        records = await self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=self._max_records)
        await asyncio.sleep(0)  # let the fetcher send the next fetch requests before we decode these
        now = self._clock()
        for tp, messages in records.items():
            if messages:
                handler = self._handlers[tp.topic]
                items = await self._decode(handler, tp.topic, tp.partition, messages)
                self._batches.add(tp, handler.batch_rows, handler.batch_seconds, [m.offset for m in messages],
                                  items, [m.key for m in messages], now)
        if now >= self._lag_at:
            self._lag_at = now + LAG_EVERY_S
            await self._update_lag()

    async def _update_lag(self) -> None:
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            first = self._batches.first_offset(tp)
            if first is None:
                first = await self._consumer.position(tp)
            metrics.LAG.labels(self.owner, tp.topic, str(tp.partition)).set(max(0, high - first))

    def _seal(self, now: float, force: bool) -> None:
        held = self._batches.seal(now, force)
        if held:
            self._consumer.pause(*held)

    async def flush_ready(self, force: bool = False) -> bool:
        """Seal ready batches (all when ``force``) and write them now; ``False`` if the store failed."""
        if self._writer is not None:
            await asyncio.wait({self._writer})
            self._reap()
        now = self._clock()
        if not self._write.due(now) and not force:
            return False
        self._seal(now, force)
        return await self.write_sealed()

    async def write_sealed(self) -> bool:
        """Write and commit every sealed batch, one handler call per topic; on a failure, pause
        and schedule a retry."""
        if self._write.retrying and self._batches.sealed:
            metrics.RETRIES.labels(self.owner).inc()
        for topic in self._batches.sealed_topics():
            if not await self._flush(topic):
                self._write.failed()
                self._consumer.pause(*self._consumer.assignment())
                metrics.PAUSED.labels(self.owner).set(1)
                return False
        if self._write.succeeded():
            self._batches.held.clear()
            self._consumer.resume(*self._consumer.paused())
            metrics.PAUSED.labels(self.owner).set(0)
        return True

    async def _flush(self, topic: str) -> bool:
        """Write the sealed batches of ``topic`` (one per partition) in one ``handler.write``
        (one insert: fewer, larger parts), then commit all their partitions."""
        async with self._lock:
            tps, batches = self._batches.take(topic, self._consumer.assignment())
            if not tps:
                return True
            handler = self._handlers[topic]
            results = await self._write(handler, batches)
            if results is None:
                return False
            for batch, result in zip(batches, results, strict=True):
                for rejected in result.rejected:
                    key = batch.key_of(rejected.offset) if batch.partition == rejected.partition else None
                    ref = MessageRef(topic, rejected.partition, rejected.offset, rejected.value, key)
                    await self._decode.invalid(handler.table, rejected.error, ref)
            committed = await self._commit({tp: b.max_offset + 1 for tp, b in zip(tps, batches, strict=True)})
            resume = self._batches.done(tps, self._write.retrying)
            if resume:
                self._consumer.resume(*resume)
        for tp, batch, result in zip(tps, batches, results, strict=True):
            self._count(handler, batch, result)
            if self._on_batch is not None:
                outcome = self._on_batch(
                    FlushResult(
                        self.owner, handler.table, tp.topic, tp.partition, batch.min_offset, batch.max_offset,
                        batch.messages, result.inserted, result.duplicates, result.suppressed, committed,
                    )
                )
                if inspect.isawaitable(outcome):
                    await outcome
        return True

    def _count(self, handler: Handler[Any], batch: Batch[Any], result: WriteResult) -> None:
        labels = (self.owner, handler.table)
        metrics.BATCHES.labels(*labels).inc()
        metrics.BATCH_MESSAGES.labels(*labels).observe(batch.messages)
        metrics.ROWS_INSERTED.labels(*labels).inc(result.inserted)
        metrics.DUPLICATES_SKIPPED.labels(*labels).inc(result.duplicates)

    async def drain(self, timeout_s: float) -> None:
        """Write everything buffered, retrying until ``timeout_s``; leave the rest uncommitted."""
        deadline = self._clock() + timeout_s
        while self._batches:
            if await self.flush_ready(force=True):
                continue
            delay = max(0.0, (self._write.retry_at or 0.0) - self._clock())
            if self._clock() + delay > deadline:
                log.error("%s: store unavailable at shutdown; %d messages left uncommitted (they will be redelivered)",
                          self.owner, self.buffered)
                return
            await asyncio.sleep(delay)
