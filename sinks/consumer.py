"""The partner sink loop: ``partner.<id>.ticketing`` -> rows -> batch -> idempotent write -> commit.

Contract of :func:`run_sink`:

- consumes as group ``techne-sink.<partner_id>`` from the earliest uncommitted offset, with
  auto-commit off; an offset is committed only after its batch is durably written, and only for
  the partition that batch belongs to (``max_offset + 1``);
- a message that cannot become a row (undecodable, wrong schema, unstorable value) is counted,
  handed to ``on_invalid`` (default: log the reason, never the payload) and skipped; its offset
  is committed with its batch. The DLQ will be an ``on_invalid`` implementation;
- a batch is flushed when it holds ``settings.sink_batch_rows`` messages or its first message
  is ``settings.sink_batch_seconds`` old;
- when the store is unavailable, nothing is committed or dropped: all assigned partitions are
  paused and the *same* batch is retried with capped exponential backoff (0.2 s doubling to
  5 s) while the loop keeps polling (group membership stays alive); consumption resumes after
  a successful write. Retries are visible in ``techne_sink_insert_errors_total`` and the logs;
- on partition revocation, batches of revoked partitions are dropped (they were not
  committed and will be redelivered to the new owner); a write in progress finishes first;
- after each flushed batch, ``on_batch`` (if given) gets a :class:`FlushResult` (awaited when it
  returns an awaitable); ``committed`` is false when the offset commit failed after the write
  (e.g. a rebalance): the rows are stored and their redelivery will be counted as duplicates;
- when ``stop`` is set, buffered batches are flushed (retrying for up to
  :data:`SHUTDOWN_FLUSH_S`), committed, and the consumer is stopped. The store is the caller's
  to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from sinks import metrics
from sinks.base import Backoff, Batch, Store, write_batch
from sinks.ddl import Row
from sinks.records import InvalidHandler, MessageRef, decode_row, log_invalid
from techne.errors import InvalidMessage, StoreUnavailable
from techne.settings import Settings

log = logging.getLogger(__name__)

POLL_MAX_S = 0.25
SHUTDOWN_FLUSH_S = 10.0


def topic_for(partner_id: str) -> str:
    return f"partner.{partner_id}.ticketing"


def group_for(partner_id: str) -> str:
    return f"techne-sink.{partner_id}"


@dataclass(frozen=True)
class FlushResult:
    """What one flushed batch did (passed to ``on_batch``)."""

    partner: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    messages: int
    inserted: int
    duplicates: int
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
    """The state machine behind :func:`run_sink`, over an already subscribed consumer."""

    def __init__(
        self,
        partner_id: str,
        store: Store,
        consumer: Any,
        *,
        batch_rows: int,
        batch_seconds: float,
        on_batch: BatchCallback | None = None,
        on_invalid: InvalidHandler = log_invalid,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.partner_id, self._store, self._consumer = partner_id, store, consumer
        self._batch_rows, self._batch_seconds = batch_rows, batch_seconds
        self._on_batch, self._on_invalid, self._clock = on_batch, on_invalid, clock
        self._open: dict[TopicPartition, Batch] = {}
        self._sealed: dict[TopicPartition, Batch] = {}
        self._lock = asyncio.Lock()
        self._backoff = Backoff()
        self._retry_at: float | None = None

    def listener(self) -> ConsumerRebalanceListener:
        return _DropRevoked(self)

    @property
    def buffered(self) -> int:
        """Messages consumed but not yet committed."""
        return sum(len(b) for b in (*self._open.values(), *self._sealed.values()))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll_once()
            await self.flush_ready()
        await self.drain(SHUTDOWN_FLUSH_S)

    async def drop(self, revoked: Iterable[TopicPartition]) -> None:
        """Forget uncommitted batches of ``revoked`` partitions (after any write in progress)."""
        tps = list(revoked)
        async with self._lock:
            dropped = [self._open.pop(tp, None) for tp in tps] + [self._sealed.pop(tp, None) for tp in tps]
        count = sum(len(b) for b in dropped if b is not None)
        if count:
            log.info("partner %s: %d uncommitted messages of revoked partitions dropped", self.partner_id, count)

    def _poll_timeout(self, now: float) -> float:
        if self._retry_at is not None:
            wait = self._retry_at - now
        else:
            deadlines = [d for b in self._open.values() if (d := b.deadline()) is not None]
            wait = min(deadlines) - now if deadlines else POLL_MAX_S
        return max(0.0, min(wait, POLL_MAX_S))

    async def poll_once(self) -> None:
        """One ``getmany``; every message is added to its partition's open batch."""
        if self._retry_at is not None:
            self._consumer.pause(*self._consumer.assignment())
        timeout_ms = int(self._poll_timeout(self._clock()) * 1000)
        records = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self._batch_rows)
        for tp, messages in records.items():
            for message in messages:
                row = await self._to_row(tp, message.offset, message.value)
                self._add(tp, message.offset, row)

    async def _to_row(self, tp: TopicPartition, offset: int, value: bytes | None) -> Row | None:
        try:
            return decode_row(value)
        except InvalidMessage as exc:
            metrics.UNDECODABLE.labels(self.partner_id).inc()
            await self._on_invalid(exc, MessageRef(tp.topic, tp.partition, offset, value))
            return None

    def _add(self, tp: TopicPartition, offset: int, row: Row | None) -> None:
        batch = self._open.get(tp)
        if batch is not None and batch.messages and offset <= batch.max_offset:
            # The partition was rewound (reassigned during this poll): older data comes again.
            log.info("partner %s: %s rewound to %d, rebuilding its batch", self.partner_id, tp, offset)
            batch = None
        if batch is None:
            batch = self._open[tp] = Batch(tp.topic, tp.partition, self._batch_rows, self._batch_seconds)
        batch.add(offset, row, self._clock())

    async def flush_ready(self, force: bool = False) -> bool:
        """Write and commit ready batches (all when ``force``); ``False`` if the store failed."""
        now = self._clock()
        if self._retry_at is not None and now < self._retry_at and not force:
            return False
        for tp, batch in list(self._open.items()):
            if tp not in self._sealed and (force or batch.ready(now)):
                self._sealed[tp] = self._open.pop(tp)
        for tp in list(self._sealed):
            if not await self._flush(tp):
                self._retry_at = self._clock() + self._backoff.next()
                self._consumer.pause(*self._consumer.assignment())
                return False
        if self._retry_at is not None:
            self._retry_at = None
            self._backoff.reset()
            self._consumer.resume(*self._consumer.paused())
        return True

    async def _flush(self, tp: TopicPartition) -> bool:
        async with self._lock:
            batch = self._sealed.get(tp)
            if batch is None:
                return True  # revoked meanwhile
            if tp not in self._consumer.assignment():
                del self._sealed[tp]
                return True
            started = time.perf_counter()
            try:
                result = await asyncio.to_thread(write_batch, self._store, batch.rows, batch.token())
            except StoreUnavailable as exc:
                metrics.INSERT_ERRORS.labels(self.partner_id).inc()
                log.warning("partner %s: writing batch %s failed, will retry: %s", self.partner_id, batch.token(), exc)
                return False
            metrics.INSERT_SECONDS.labels(self.partner_id).observe(time.perf_counter() - started)
            committed = await self._commit(tp, batch.max_offset + 1)
            del self._sealed[tp]
        metrics.BATCHES.labels(self.partner_id).inc()
        metrics.ROWS_INSERTED.labels(self.partner_id).inc(result.inserted)
        metrics.DUPLICATES_SKIPPED.labels(self.partner_id).inc(result.duplicates)
        if self._on_batch is not None:
            outcome = self._on_batch(
                FlushResult(
                    self.partner_id,
                    tp.topic,
                    tp.partition,
                    batch.min_offset,
                    batch.max_offset,
                    batch.messages,
                    result.inserted,
                    result.duplicates,
                    committed,
                )
            )
            if inspect.isawaitable(outcome):
                await outcome
        return True

    async def _commit(self, tp: TopicPartition, offset: int) -> bool:
        try:
            await self._consumer.commit({tp: offset})
        except KafkaError as exc:
            # Rows are durable; a redelivery of this batch will be recognised as duplicates.
            log.warning(
                "partner %s: commit of %s@%d failed (%s); batch will be redelivered and deduplicated",
                self.partner_id,
                tp,
                offset,
                exc,
            )
            return False
        return True

    async def drain(self, timeout_s: float) -> None:
        """Flush everything buffered, retrying until ``timeout_s``; leave the rest uncommitted."""
        deadline = self._clock() + timeout_s
        while self._open or self._sealed:
            if await self.flush_ready(force=True):
                continue
            delay = max(0.0, (self._retry_at or 0.0) - self._clock())
            if self._clock() + delay > deadline:
                log.error(
                    "partner %s: store unavailable at shutdown; %d messages left uncommitted "
                    "(they will be redelivered)",
                    self.partner_id,
                    self.buffered,
                )
                return
            await asyncio.sleep(delay)


async def _ensure_schema(store: Store, stop: asyncio.Event, partner_id: str) -> bool:
    backoff = Backoff()
    while not stop.is_set():
        try:
            await asyncio.to_thread(store.ensure_schema)
            return True
        except StoreUnavailable as exc:
            delay = backoff.next()
            log.warning("partner %s: store not ready (%s); retrying in %.1fs", partner_id, exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return False


async def run_sink(
    settings: Settings,
    partner_id: str,
    store: Store,
    stop: asyncio.Event,
    on_batch: BatchCallback | None = None,
    *,
    on_invalid: InvalidHandler = log_invalid,
) -> None:
    """Run the sink of ``partner_id`` into ``store`` until ``stop`` is set (see module doc)."""
    if not await _ensure_schema(store, stop, partner_id):
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=group_for(partner_id),
        client_id=f"techne-sink-{partner_id}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    loop = SinkLoop(
        partner_id,
        store,
        consumer,
        batch_rows=settings.sink_batch_rows,
        batch_seconds=settings.sink_batch_seconds,
        on_batch=on_batch,
        on_invalid=on_invalid,
    )
    consumer.subscribe([topic_for(partner_id)], listener=loop.listener())
    try:
        await consumer.start()
        await loop.run(stop)
    finally:
        await consumer.stop()
