"""Durable delivery: Kafka when it answers in time, the spool otherwise, replayed in order.

:meth:`Delivery.deliver` returns once every record is durable — acknowledged by Kafka
(idempotent producer, ``acks=all``) or fsynced into the spool — and raises :class:`SpoolFull`
*before writing anything* when the spool has no room for the whole request.

Order. While the spool holds anything, new records go to the spool behind it (a record sent
straight to Kafka could overtake an older one of the same person). Records past the
``deadline`` are spooled *in flight*: aiokafka's idempotent producer keeps retrying them, so
the replayer first waits for those acknowledgements (an acknowledged one leaves the spool), then
reconciles what is still in flight against the topic (spool.py), then replays the rest in
``seq`` order, ``batch`` records at a time, deleting them once acknowledged.

Data keys first. A record sealed with a data key new to Kafka carries that key's key-topic record
(``Prepared.keys``, see producers/keyring.py). Every write here sends the key records first and
waits for their acknowledgement before handing over the events (:meth:`_send_all`); spooled, the
key records are kept with their events and replayed ahead of them. Once durable either
way, the keyring stops attaching them (:func:`producers.ingest.confirm_keys`). A spooled entry
keeps the key records it carries (spool.py).

The replayer also (re)starts the producer when Kafka was unreachable at start-up. :meth:`stop`
lets the batch being replayed finish (up to ``grace`` seconds); anything left stays spooled for
the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from core import metrics
from core.kafka_auth import KafkaAuth, aiokafka_kwargs
from producers.ingest import Prepared, confirm_keys, split_keys
from producers.kafka import EventProducer, ProduceFailed
from producers.spool import Entry, Spool, SpoolFull, Watermarks

__all__ = ["Delivery", "SpoolFull"]
log = logging.getLogger("techne.delivery")


class Delivery:
    """One producer + one spool + the background replayer."""

    def __init__(self, producer: EventProducer, spool: Spool, *, bootstrap: str, auth: KafkaAuth | None = None,
                 deadline: float = 5.0, batch: int = 500, grace: float = 10.0) -> None:
        self.producer, self.spool = producer, spool
        self.deadline, self.batch, self.grace = deadline, batch, grace
        self._bootstrap, self._auth = bootstrap, auth or KafkaAuth()
        self._acked: Watermarks = spool.watermarks()
        self._pending: set[asyncio.Future[None]] = set()  # direct sends past their deadline
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        metrics.SPOOL_DEPTH.set_function(lambda: spool.depth)
        metrics.SPOOL_OLDEST_AGE.set_function(spool.oldest_age)

    async def start(self) -> None:
        """Connect to Kafka if it answers now (else the replayer keeps trying) and start replaying."""
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            await asyncio.wait_for(self.producer.start(), max(self.deadline, self.producer.timeout))
        self._task = asyncio.create_task(self._replay_loop(), name="spool-replay")
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, self.grace)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.producer.stop(), self.grace)
        self.spool.close()

    async def deliver(self, records: Sequence[Prepared]) -> None:
        """Make ``records`` durable (Kafka ack or spool); :class:`SpoolFull` writes nothing."""
        if not records:
            return
        self.spool.reserve(len(records))
        try:
            if self.spool.depth or not self.producer.started:
                self._spool(records)
                return
            await self._direct(records)
        finally:
            self.spool.release(len(records))

    def _spool(self, records: Sequence[Prepared], *, in_flight: bool = False) -> list[int]:
        seqs = self.spool.append(records, in_flight=in_flight, watermarks=self._acked if in_flight else None)
        confirm_keys(split_keys(records)[0])  # spooled with their events, replayed ahead of them
        metrics.SPOOLED.inc(len(records))
        self._wake.set()
        return seqs

    async def _send_all(self, records: Sequence[Prepared]) -> None:
        """Write the key records of ``records`` and wait for them, then hand the other records to
        the client in order and wait for every acknowledgement.

        Never abandons a record it handed over: it returns (or raises :class:`ProduceFailed`) only
        once every handed record's future settled, so nothing is still on its way to Kafka after."""
        keys, events = split_keys(records)
        if keys:
            await self._send_phase(keys)
            confirm_keys(keys)
        await self._send_phase(events)

    async def _send_phase(self, records: Sequence[Prepared]) -> None:
        futures: list[asyncio.Future[Any]] = []
        error: Exception | None = None
        for r in records:
            try:
                futures.append(await self.producer.enqueue(r.topic, r.key, r.value, r.headers))
            except ProduceFailed as exc:
                error = exc
                break
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                error = error or ProduceFailed(type(result).__name__)
            else:
                self._note_ack(result)
        if error is not None:
            raise error if isinstance(error, ProduceFailed) else ProduceFailed(str(error))

    async def _direct(self, records: Sequence[Prepared]) -> None:
        started = time.perf_counter()
        task = asyncio.ensure_future(self._send_all(records))
        await asyncio.wait({task}, timeout=self.deadline)
        if task.done() and task.exception() is None:
            metrics.PRODUCE_SECONDS.observe(time.perf_counter() - started)
            return
        # Not acknowledged in time (or failed): spooled *in flight*, since some may be written.
        seqs = self._spool(records, in_flight=True)
        if not task.done():  # the client still owns them: the replayer waits for this first
            self._pending.add(task)
            task.add_done_callback(lambda t: self._settled(seqs, t))

    def _note_ack(self, meta: Any) -> None:
        tp = (meta.topic, meta.partition)
        self._acked[tp] = max(self._acked.get(tp, 0), meta.offset + 1)

    def _settled(self, seqs: list[int], task: asyncio.Future[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is None:
            self.spool.delete(seqs)
        self._wake.set()

    async def _replay_loop(self) -> None:
        backoff = 0.2
        while not self._stopping:
            if self.spool.depth == 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._replay_once()
                backoff = 0.2
            except Exception as exc:  # never dies: whatever failed, the entries stay spooled
                log.warning("spool replay waiting for Kafka (%s entries): %s", self.spool.depth, type(exc).__name__,
                            exc_info=not isinstance(exc, KafkaError | ProduceFailed | OSError | TimeoutError))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), backoff)
                backoff = min(backoff * 2, 5.0)

    async def _replay_once(self) -> None:
        if not self.producer.started:
            await asyncio.wait_for(self.producer.start(), max(self.deadline, self.producer.timeout))
        if self._pending:  # earlier sends the producer is still retrying: they go first
            await asyncio.wait(set(self._pending))
            return
        entries = self.spool.head(self.batch)
        if any(e.in_flight for e in entries):
            entries = await self._reconcile(entries)
        if not entries:
            return
        self.spool.mark_in_flight([e.seq for e in entries], self._acked)
        await self._send_all([e.record for e in entries])  # the idempotent producer retries until acknowledged
        self.spool.delete([e.seq for e in entries])
        metrics.SPOOL_REPLAYED.inc(len(entries))

    async def _reconcile(self, entries: list[Entry]) -> list[Entry]:
        """Drop in-flight entries already on their topic; return those still to send."""
        wanted = {e.record.event_id for e in entries if e.in_flight}
        found, ends = await _scan_event_ids(self._bootstrap, self._auth, {e.record.topic for e in entries},
                                            self.spool.watermarks(), wanted)
        done = [e.seq for e in entries if e.in_flight and e.record.event_id in found]
        self.spool.delete(done)
        self.spool.mark_in_flight([], ends)
        for tp, offset in ends.items():
            self._acked[tp] = max(self._acked.get(tp, 0), offset)
        metrics.SPOOL_RECONCILED.inc(len(done))
        if done:
            log.info("spool: %d in-flight events were already on Kafka, not sent again", len(done))
        return [e for e in entries if e.seq not in set(done)]


async def _scan_event_ids(bootstrap: str, auth: KafkaAuth, topics: set[str], start: Watermarks,
                          wanted: set[str]) -> tuple[set[str], Watermarks]:
    """``event_id`` headers among ``wanted`` found on ``topics`` from ``start`` to the end, and the end offsets."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **aiokafka_kwargs(auth))
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(topics))
    finally:
        await admin.close()
    tps = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    if len({tp.topic for tp in tps}) < len(topics):
        raise ProduceFailed(f"cannot describe every topic of {sorted(topics)}")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                request_timeout_ms=10_000, **aiokafka_kwargs(auth))
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(start.get((tp.topic, tp.partition), 0), begins[tp]))
        found: set[str] = set()
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for msg in batch:
                    ids = [v.decode() for k, v in msg.headers if k == "event_id"]
                    found.update(i for i in ids if i in wanted)
        return found, {(tp.topic, tp.partition): off for tp, off in ends.items()}
    finally:
        await consumer.stop()
