"""The one Faust app of the bus: a thin shell around :class:`streams.processor.Processor`.

One agent consumes every venue's raw topic (co-partitioned, keyed by subject reference). The
consent ledger is a changelog-backed Faust table, so it survives restarts and rebalances.
For each message the agent reads the ledger, calls the processor, writes the ledger update
and sends the outputs (partner events, erasure commands, audit lines, dead letters).

Delivery: at least once. Faust commits a source offset only after flushing the producer
(``Consumer._commit_offsets``), so every output of a committed message is on Kafka; a
replay after a crash re-emits the same records, which sinks deduplicate by ``event_id`` /
``command_id``. A flood of invalid messages stops the worker (:class:`PoisonFlood`).

Sealed identifiers are opened with the worker's :class:`~streams.keystore.KeyStore` (every data
key of ``techne.keys``, read when the agent first starts and tailed for the process's life). A
key not in memory yet makes the agent catch up with the key topic and handle the message again;
still missing, it was shredded (a key on the topic that this worker cannot unwrap is no shredded
key: the message is a dead letter ``key_unreadable``, see streams/keystore.py). After an erasure
request the agent waits for the acknowledgement of its outputs (erasure commands, audit), then
writes the tombstones of the subject's data keys (:meth:`KeyStore.shred`) and, once they are
acknowledged, the audit line ``keys_shredded``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from core.datakeys import MasterKeys
from core.dlq import InvalidRateGuard, PoisonFlood
from core.errors import ConfigError
from core.kafka_auth import faust_credentials
from core.settings import Settings
from core.topics import KEYS, LEDGER_CHANGELOG, TopicPolicy, raw_topic
from core.venues import load_venues
from schemas.agreements import Agreement, load_agreements
from schemas.models import CONSENT, Purpose
from schemas.registry_client import catalogue_for
from schemas.sealing import SEALER
from streams.faust_config import faust_settings
from streams.keystore import KeyPending, KeyStore
from streams.processor import Processor, Result, Shred
from streams.steps.expiry import AUTH as EXPIRY_AUTH
from streams.steps.expiry import lapsed

log = logging.getLogger("techne.worker")
CRASH_EXIT_S = 15.0
"""After a poison flood, the most the worker waits for Faust's shutdown before it ends itself:
Faust's stop after ``app.crash`` has hung now and then (the suite saw a crashed worker still
alive 90 s later), and a supervisor can only restart, and an operator only see, a process that
ended. At-least-once holds: nothing past the last commit is lost, it is read again."""


def exit_soon(seconds: float, code: int = 1) -> threading.Timer:
    """End the process with ``code`` in ``seconds`` unless it has ended by then (daemon timer)."""
    timer = threading.Timer(seconds, os._exit, args=(code,))
    timer.daemon = True
    timer.start()
    return timer


def header_value(headers: object, name: str) -> str | None:
    """One Kafka header as text (Faust gives a list of pairs or a mapping), None if absent."""
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    for key, value in pairs:  # type: ignore[attr-defined]
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


def build_processor(settings: Settings, agreements: list[Agreement]) -> Processor:
    version, _ = settings.current_pseudonym_key()
    keys = {v: k.get_secret_value().encode() for v, k in settings.pseudonym_keys.items()}
    known = {p.value for p in Purpose}
    unknown = set(settings.consent_ttl_days) - known
    if unknown:
        raise ConfigError(f"TECHNE_CONSENT_TTL_DAYS: unknown purposes {sorted(unknown)}; known: {sorted(known)}")
    ttls = {p: timedelta(days=d) for p, d in settings.consent_ttl_days.items()}
    return Processor(agreements, keys, version, ttls, catalogue_for(settings.schema_registry_url))


def key_max_age(settings: Settings) -> float:
    """Seconds after its creation a data key can still be needed: used for new events during the
    producers' cache time, which stay on raw or dead-letter topics for their retention (+ 1 h)."""
    return settings.datakey_cache_seconds + 3600 * (max(settings.raw_retention_hours,
                                                        settings.dlq_retention_hours) + 1)


def create_app(settings: Settings, agreements: list[Agreement] | None = None,
               venues: list[str] | None = None, clock: Callable[[], datetime] | None = None) -> faust.App:
    """Build the worker app from validated settings, agreements and the venue list; ``clock``
    (default: the wall clock, UTC) is what the consent-expiry scan calls "now"."""
    venues = venues or sorted(load_venues(settings.venues_file))
    if agreements is None:
        agreements = load_agreements(settings.agreements_dir, set(venues))
    processor = build_processor(settings, agreements)
    now = clock or (lambda: datetime.now(UTC))
    guard = InvalidRateGuard(settings.poison_window, settings.poison_threshold)
    keystore = KeyStore(settings.bootstrap, MasterKeys.from_settings(settings), settings.kafka_auth())
    app = faust.App(
        settings.worker_id,
        **faust_settings(settings.bootstrap, settings.replication_factor, settings.worker_producer_linger_ms),
        broker_credentials=faust_credentials(settings.kafka_auth()),
        datadir=str(settings.data_dir / "worker"),
        topic_partitions=settings.partitions,
        broker_commit_interval=settings.worker_commit_interval_s,
        processing_guarantee="at_least_once",  # exactly_once does not cover our outputs: docs/privacy.md
    )
    started = asyncio.Lock()
    raw = app.topic(*(raw_topic(v) for v in venues), key_serializer="raw", value_serializer="raw")
    # values: JSON (the app default serializer). While a grant stands its state holds the person's
    # identifier (for the expiry erasure): the changelog compacts within the key topic's bound.
    ledger = app.Table("consent-ledger", default=None, partitions=settings.partitions, key_type=str,
                       extra_topic_configs=TopicPolicy.from_settings(settings).configs(LEDGER_CHANGELOG))

    def handle(message: Any, keys: Any) -> Result:
        return processor.handle(message.value, message.key, message.topic, ledger.get,
                                header_value(message.headers, "auth"), keys)

    async def send(topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> Any:
        """Straight to Faust's producer (flushed by Faust before each commit); the ack's future."""
        return await app.producer.send(topic, key, value, None, None, headers or None)

    async def shred(order: Shred, sent: list[Any]) -> None:
        """The subject's outputs (erasure commands, audit) acknowledged first: a crash cannot lose
        them; then the tombstones, acknowledged; then the audit line of the shredding."""
        await asyncio.gather(*sent)
        count = await keystore.shred(order.subject, lambda topic, key, value: send(topic, key, value))
        await send(order.audit.topic, order.audit.key, order.audit.value)
        log.info("erasure request: %d data keys shredded", count)

    async def keys_ready() -> None:
        async with started:
            if not keystore.consumer_started:
                await keystore.start()

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def stop_keys(app: faust.App, **kwargs: Any) -> None:
        """The key store's consumer and tail task end with the app (else they keep the process up)."""
        await keystore.stop()

    @app.agent(raw)  # type: ignore[untyped-decorator]
    async def process(stream: faust.StreamT[bytes]) -> None:
        await keys_ready()
        async for event in stream.events():
            message = event.message
            try:
                result = handle(message, keystore.lookup_pending)
            except KeyPending:  # keys are written before their events: caught up, a missing key was shredded
                await keystore.catch_up()
                result = handle(message, keystore.lookup)
            if result.ledger_update is not None:
                ledger[message.key.decode()] = result.ledger_update
            sent = [await send(out.topic, out.key, out.value, out.headers) for out in result.outputs]
            if result.shred is not None:
                await shred(result.shred, sent)
            try:
                guard.record(result.invalid)
            except PoisonFlood as exc:
                log.critical("%s", exc)
                exit_soon(CRASH_EXIT_S)  # whatever Faust's shutdown does
                await keystore.stop()  # its consumer and tail task would keep the crashed process alive
                await app.crash(exc)
                return

    @app.timer(interval=3600.0)  # type: ignore[untyped-decorator]
    async def expire_keys() -> None:
        """Tombstone the data keys no retained event can need any more (docs/privacy.md)."""
        await keys_ready()
        for rkey in keystore.expired(time.time(), key_max_age(settings)):
            await send(KEYS, rkey, None)

    @app.timer(interval=settings.consent_expiry_scan_s)  # type: ignore[untyped-decorator]
    async def expire_consents() -> None:
        """Feed lapsed grants back as ``consent.expired`` events (streams/steps/expiry.py)."""
        at = now()
        await keys_ready()
        for key, entry in list(ledger.items()):
            for venue, record in lapsed(str(key), entry or {}, at, processor.ttls):
                SEALER.seal(CONSENT, record, await keystore.key_for(str(key), send))  # sealed like any producer's
                headers = [("event_id", record["event_id"].encode()), ("auth", EXPIRY_AUTH.encode())]
                await app.producer.send(raw_topic(venue), str(key).encode(),
                                        processor.catalogue.encode(CONSENT, record), None, None, headers)

    return app
