"""Wiring of the sink processes: Kafka consumer (and producer) + handlers + :class:`SinkLoop`.

:func:`run_sink` runs one partner's sink until ``stop`` is set: it consumes
``partner.<id>.ticketing`` (-> ``ticket_orders``, :mod:`sinks.orders`), the partner's topic of
every other kind it has a table for (``partner.<id>.campaign`` -> ``email_clicks``, ...:
:func:`sinks.orders.shared_handlers`) and ``partner.<id>.erasure`` (-> executed erasures,
:mod:`sinks.erasure`) as group ``techne-sink.<id>``; a venue's own store the same from
``venue.<venue>.*`` as group ``techne-sink.venue:<venue>``, from the earliest uncommitted
offsets, and produces erasure completions to ``techne.audit``. :func:`run_audit_sink` consumes
``techne.audit`` into the audit store as group ``techne-audit-sink``. Both first create/evolve
their tables, retrying with backoff while the store is unavailable; see :mod:`sinks.loop` for
batching, commits, retries and shutdown. Both dead-letter what they cannot store to ``dlq.sink``
(created at start when missing) before committing past it (:mod:`sinks.dlq`).
Stores are the caller's to open and close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from core.dlq import InvalidRateGuard
from core.errors import StoreUnavailable
from core.kafka_auth import aiokafka_kwargs
from core.settings import Settings
from core.topics import AUDIT, ensure_topics
from schemas.registry_client import catalogue_for
from sinks import audit
from sinks.base import Backoff, Store
from sinks.dlq import TOPIC as DLQ_TOPIC
from sinks.dlq import DeadLetters
from sinks.erasure import EraseHandler, Tombstones
from sinks.framing import SharedFormat
from sinks.loop import BatchCallback, SinkLoop
from sinks.metrics import AUDIT_LABEL
from sinks.migrate import ensure_partner, ensure_table
from sinks.orders import shared_handlers
from sinks.records import InvalidHandler
from sinks.tables import PartnerTables

log = logging.getLogger(__name__)
AUDIT_GROUP = "techne-audit-sink"
ERASURE_BATCH_S = 0.05
FETCH = {"max_partition_fetch_bytes": 8 << 20, "fetch_max_bytes": 32 << 20,
         # under a trickle (webhook batches), a fetch per few records cost the sink and the broker
         # more than the inserts: wait for 256 KiB or 200 ms. Measured with `techne bench e2e`:
         # sink CPU halved, end-to-end events/s ~1,500 -> ~1,950, latency p99 unchanged (<= 0.5 s)
         "fetch_min_bytes": 256 << 10, "fetch_max_wait_ms": 200}


def _guard(settings: Settings) -> InvalidRateGuard:
    """The worker's poison-flood limits (``TECHNE_POISON_WINDOW`` / ``_THRESHOLD``) for a sink."""
    return InvalidRateGuard(settings.poison_window, settings.poison_threshold)


def group_for(partner_id: str) -> str:
    return f"techne-sink.{partner_id}"


async def _ensure(step: Callable[[], object], stop: asyncio.Event, owner: str) -> bool:
    backoff = Backoff()
    while not stop.is_set():
        try:
            await asyncio.to_thread(step)
            return True
        except StoreUnavailable as exc:
            delay = backoff.next()
            log.warning("%s: store not ready (%s); retrying in %.1fs", owner, exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return False


def _producer(settings: Settings, client: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        client_id=client,
        acks="all",
        enable_idempotence=True,
        **aiokafka_kwargs(settings.kafka_auth()),
    )


async def _dead_letters(settings: Settings, producer: AIOKafkaProducer, owner: str) -> DeadLetters:
    """The loop's ``on_invalid``: ``dlq.sink`` through ``producer`` (the topic is created if missing)."""
    try:
        await ensure_topics(settings.bootstrap, [DLQ_TOPIC], settings.partitions, settings.replication_factor)
    except KafkaError as exc:  # e.g. the broker is not up yet: producing will tell
        log.warning("%s: could not check %s (%s)", owner, DLQ_TOPIC, exc)

    async def send(topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        await producer.send_and_wait(topic, value, key=key, headers=headers)

    return DeadLetters(send, owner)


def _consumer(settings: Settings, group: str, client: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=group,
        client_id=client,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FETCH,
        **aiokafka_kwargs(settings.kafka_auth()),
    )


async def run_sink(
    settings: Settings,
    tables: PartnerTables,
    store: Store,
    stop: asyncio.Event,
    on_batch: BatchCallback | None = None,
    *,
    on_invalid: InvalidHandler | None = None,
    shared: SharedFormat | None = None,
) -> None:
    """Run the sink of ``tables.partner`` into ``store`` until ``stop`` is set (see module doc);
    ``on_invalid`` defaults to dead letters on ``dlq.sink``. Schema ids are read as the worker
    wrote them: ``shared``'s catalogue, else the external registry's
    (``TECHNE_SCHEMA_REGISTRY_URL``, resolved once at start), else the shipped manifest's."""
    partner = tables.partner
    if shared is None:
        shared = SharedFormat(catalogue_for(settings.schema_registry_url))
    if not await _ensure(lambda: ensure_partner(store, tables), stop, partner):
        return
    producer = _producer(settings, f"techne-sink-{partner}")

    async def publish(key: bytes, value: bytes) -> None:
        try:
            await producer.send_and_wait(AUDIT, value, key=key)
        except KafkaError as exc:
            raise StoreUnavailable(f"audit topic unavailable: {exc}") from exc

    tombstones = Tombstones(store, tables)
    handlers = shared_handlers(store, tables, tombstones, batch_rows=settings.sink_batch_rows,
                               batch_seconds=settings.sink_batch_seconds, shared=shared)
    erase = EraseHandler(
        store, tables, tombstones, publish, topic=tables.topic("erasure"),
        batch_seconds=min(ERASURE_BATCH_S, settings.sink_batch_seconds), catalogue=shared.catalogue,
    )
    consumer = _consumer(settings, group_for(partner), f"techne-sink-{partner}")
    on_invalid = on_invalid or await _dead_letters(settings, producer, partner)
    loop = SinkLoop(partner, consumer, [*handlers, erase], on_batch=on_batch, on_invalid=on_invalid,
                    guard=_guard(settings))
    consumer.subscribe(loop.topics, listener=loop.listener())
    try:
        await producer.start()
        await consumer.start()
        await loop.run(stop)
    finally:
        await consumer.stop()
        await producer.stop()


async def run_audit_sink(
    settings: Settings,
    store: Store,
    stop: asyncio.Event,
    on_batch: BatchCallback | None = None,
    *,
    on_invalid: InvalidHandler | None = None,
) -> None:
    """Run the audit sink (``techne.audit`` -> ``audit.decisions``) until ``stop`` is set;
    ``on_invalid`` defaults to dead letters on ``dlq.sink``."""
    if not await _ensure(lambda: ensure_table(store, audit.SPEC), stop, AUDIT_LABEL):
        return
    store.use(audit.DATABASE)
    handler = audit.AuditHandler(
        store, topic=AUDIT, batch_rows=settings.sink_batch_rows, batch_seconds=settings.sink_batch_seconds
    )
    consumer = _consumer(settings, AUDIT_GROUP, "techne-audit-sink")
    producer = _producer(settings, "techne-audit-sink")
    on_invalid = on_invalid or await _dead_letters(settings, producer, AUDIT_LABEL)
    loop = SinkLoop(AUDIT_LABEL, consumer, [handler], on_batch=on_batch, on_invalid=on_invalid,
                    guard=_guard(settings))
    consumer.subscribe(loop.topics, listener=loop.listener())
    try:
        await producer.start()
        await consumer.start()
        await loop.run(stop)
    finally:
        await consumer.stop()
        await producer.stop()
