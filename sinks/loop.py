"""The sink loop: messages -> per-partition batches -> ``handler.write`` -> commit (generic).

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
from aiokafka.errors import KafkaError

from core.dlq import InvalidRateGuard
from core.errors import InvalidMessage, StoreUnavailable
from sinks import metrics
from sinks.base import Backoff, Batch, WriteResult, batches_token
from sinks.faults import FAULT_TABLE, NO_FAULTS, Faults
from sinks.records import InvalidHandler, MessageRef, log_invalid

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_MAX_S = 0.25
WRITER_POLL_S = 0.01
GROW_CAP = 4
"""A partition's open batch may grow to this many batch sizes while its previous batch is being
written (bigger inserts when the store is the bottleneck); beyond, the partition is paused."""
COMMIT_TIMEOUT_S = 15.0
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
    """The state machine behind the sinks, over an already subscribed consumer."""

    def __init__(
        self,
        owner: str,
        consumer: Any,
        handlers: Sequence[Handler[Any]],
        *,
        on_batch: BatchCallback | None = None,
        on_invalid: InvalidHandler = log_invalid,
        faults: Faults = NO_FAULTS,
        clock: Callable[[], float] = time.monotonic,
        guard: InvalidRateGuard | None = None,
    ) -> None:
        self.owner, self._consumer, self._guard = owner, consumer, guard
        self._handlers = {h.topic: h for h in handlers}
        self._max_records = max(h.batch_rows for h in handlers)
        self._on_batch, self._on_invalid, self._faults, self._clock = on_batch, on_invalid, faults, clock
        self._open: dict[TopicPartition, Batch[Any]] = {}
        self._sealed: dict[TopicPartition, Batch[Any]] = {}
        self._held: set[TopicPartition] = set()
        self._next: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._backoff = Backoff()
        self._retry_at: float | None = None
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
        return sum(len(b) for b in (*self._open.values(), *self._sealed.values()))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step()
        await self.drain(SHUTDOWN_FLUSH_S)

    async def step(self) -> None:
        """Poll, seal the ready batches, start the writer if it is idle."""
        self._reap()
        await self.poll_once()
        self._seal(self._clock(), force=False)
        if self._sealed and not self._writing() and (self._retry_at is None or self._clock() >= self._retry_at):
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
        tps = list(revoked)
        async with self._lock:
            dropped = [self._open.pop(tp, None) for tp in tps] + [self._sealed.pop(tp, None) for tp in tps]
            for tp in tps:
                self._held.discard(tp)
                self._next.pop(tp, None)
        count = sum(len(b) for b in dropped if b is not None)
        if count:
            log.info("%s: %d uncommitted messages of revoked partitions dropped", self.owner, count)

    def _poll_timeout(self, now: float) -> float:
        """Until the next batch can be sealed or retried; short while the writer works (to seal
        the next batch as soon as it is done). Never counts batches that wait for their
        partition's previous one: they cannot be sealed before the writer finishes."""
        if self._retry_at is not None:
            wait = self._retry_at - now
        else:
            sealable = (b for tp, b in self._open.items() if tp not in self._sealed)
            deadlines = [d for b in sealable if (d := b.deadline()) is not None]
            wait = min(deadlines) - now if deadlines else POLL_MAX_S
            if self._writing():
                wait = min(wait, WRITER_POLL_S)
        return max(0.0, min(wait, POLL_MAX_S))

    async def poll_once(self) -> None:
        """One ``getmany``; every message is decoded and added to its partition's open batch."""
        if self._retry_at is not None:
            self._consumer.pause(*self._consumer.assignment())
        timeout_ms = int(self._poll_timeout(self._clock()) * 1000)
        records = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self._max_records)
        await asyncio.sleep(0)  # let the fetcher send the next fetch requests before we decode these
        now = self._clock()
        for tp, messages in records.items():
            if messages:
                await self._add_all(tp, messages, now)
        if now >= self._lag_at:
            self._lag_at = now + LAG_EVERY_S
            await self._update_lag()

    async def _add_all(self, tp: TopicPartition, messages: list[Any], now: float) -> None:
        handler = self._handlers[tp.topic]
        batch = self._open.get(tp)
        if batch is not None and messages[0].offset <= batch.max_offset:
            # The partition was rewound (reassigned during this poll): older data comes again.
            log.info("%s: %s rewound to %d, rebuilding its batch", self.owner, tp, messages[0].offset)
            batch = None
        if batch is None:
            batch = self._open[tp] = Batch(tp.topic, tp.partition, handler.batch_rows, handler.batch_seconds)
        decode = handler.decode
        decode_many = getattr(handler, "decode_many", None)
        try:  # the usual case, in bulk: every message decodes
            items = decode_many([m.value for m in messages]) if decode_many else [decode(m.value) for m in messages]
        except InvalidMessage:
            for message in messages:
                try:
                    item = decode(message.value)
                except InvalidMessage as exc:
                    if self._guard is not None:
                        self._guard.record(True)  # may stop the sink here, before this letter
                    ref = MessageRef(tp.topic, tp.partition, message.offset, message.value, message.key)
                    await self._invalid(handler, exc, ref)
                    item = None
                else:
                    if self._guard is not None:
                        self._guard.record(False)
                batch.add(message.offset, item, now, message.key)
        else:
            if self._guard is not None:
                self._guard.record_valid(len(messages))
            batch.extend([m.offset for m in messages], items, now, [m.key for m in messages])
        self._next[tp] = messages[-1].offset + 1

    async def _invalid(self, handler: Handler[Any], exc: InvalidMessage, ref: MessageRef) -> None:
        metrics.UNDECODABLE.labels(self.owner, handler.table).inc()
        await self._on_invalid(exc, ref)

    async def _update_lag(self) -> None:
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            firsts = [b.min_offset for b in (self._sealed.get(tp), self._open.get(tp)) if b is not None and b.messages]
            first = min(firsts) if firsts else self._next.get(tp)
            if first is None:
                first = await self._consumer.position(tp)
            metrics.LAG.labels(self.owner, tp.topic, str(tp.partition)).set(max(0, high - first))

    def _seal(self, now: float, force: bool) -> None:
        for tp, batch in list(self._open.items()):
            if not (force or batch.ready(now)):
                continue
            if tp in self._sealed:  # its previous batch is being written: it grows, up to a cap
                if not force and tp not in self._held and batch.messages >= GROW_CAP * batch.max_messages:
                    self._held.add(tp)
                    self._consumer.pause(tp)
                continue
            self._sealed[tp] = self._open.pop(tp)

    async def flush_ready(self, force: bool = False) -> bool:
        """Seal ready batches (all when ``force``) and write them now; ``False`` if the store failed."""
        if self._writer is not None:
            await asyncio.wait({self._writer})
            self._reap()
        now = self._clock()
        if self._retry_at is not None and now < self._retry_at and not force:
            return False
        self._seal(now, force)
        return await self.write_sealed()

    async def write_sealed(self) -> bool:
        """Write and commit every sealed batch, one handler call per topic; on a failure, pause
        and schedule a retry."""
        if self._retry_at is not None and self._sealed:
            metrics.RETRIES.labels(self.owner).inc()
        for topic in dict.fromkeys(tp.topic for tp in self._sealed):
            if not await self._flush(topic):
                self._retry_at = self._clock() + self._backoff.next()
                self._consumer.pause(*self._consumer.assignment())
                metrics.PAUSED.labels(self.owner).set(1)
                return False
        if self._retry_at is not None:
            self._retry_at = None
            self._backoff.reset()
            self._held.clear()
            self._consumer.resume(*self._consumer.paused())
            metrics.PAUSED.labels(self.owner).set(0)
        return True

    async def _flush(self, topic: str) -> bool:
        """Write the sealed batches of ``topic`` (one per partition) in one ``handler.write``
        (one insert: fewer, larger parts), then commit all their partitions."""
        async with self._lock:
            assigned = self._consumer.assignment()
            for tp in [tp for tp in self._sealed if tp.topic == topic and tp not in assigned]:
                del self._sealed[tp]  # revoked meanwhile: redelivered to the new owner
            tps = [tp for tp in self._sealed if tp.topic == topic]
            if not tps:
                return True
            batches = [self._sealed[tp] for tp in tps]
            handler = self._handlers[topic]
            started = time.perf_counter()
            try:
                results = await handler.write(batches)
            except StoreUnavailable as exc:
                metrics.INSERT_ERRORS.labels(self.owner, handler.table).inc()
                log.warning("%s: writing %s failed, will retry: %s", self.owner, batches_token(batches), exc)
                return False
            metrics.INSERT_SECONDS.labels(self.owner, handler.table).observe(time.perf_counter() - started)
            for batch, result in zip(batches, results, strict=True):
                for rejected in result.rejected:
                    key = batch.key_of(rejected.offset) if batch.partition == rejected.partition else None
                    ref = MessageRef(topic, rejected.partition, rejected.offset, rejected.value, key)
                    await self._invalid(handler, rejected.error, ref)
            if handler.table == FAULT_TABLE and any(b.items for b in batches):
                self._faults.hit("after_insert")
            committed = await self._commit({tp: b.max_offset + 1 for tp, b in zip(tps, batches, strict=True)})
            for tp in tps:
                del self._sealed[tp]
                if tp in self._held and self._retry_at is None:
                    self._held.discard(tp)
                    self._consumer.resume(tp)
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

    async def _commit(self, offsets: dict[TopicPartition, int]) -> bool:
        try:
            # bounded: after a broker restart aiokafka's commit can wait for a coordinator forever
            await asyncio.wait_for(self._consumer.commit(offsets), COMMIT_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            # Rows are durable; a redelivery of these batches will be recognised as duplicates.
            log.warning("%s: commit of %s failed (%s); the batches will be redelivered and deduplicated",
                        self.owner, offsets, exc)
            return False
        return True

    async def drain(self, timeout_s: float) -> None:
        """Write everything buffered, retrying until ``timeout_s``; leave the rest uncommitted."""
        deadline = self._clock() + timeout_s
        while self._open or self._sealed:
            if await self.flush_ready(force=True):
                continue
            delay = max(0.0, (self._retry_at or 0.0) - self._clock())
            if self._clock() + delay > deadline:
                log.error("%s: store unavailable at shutdown; %d messages left uncommitted (they will be redelivered)",
                          self.owner, self.buffered)
                return
            await asyncio.sleep(delay)
