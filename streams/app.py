"""The one Faust app of the bus: a thin shell around :class:`streams.processor.Processor`.

One agent consumes every venue's raw topic (co-partitioned, keyed by subject reference). The
consent ledger is a changelog-backed Faust table, so it survives restarts and rebalances.
For each message the agent reads the ledger, calls the processor, writes the ledger update
and sends the outputs (partner events, erasure commands, audit lines, dead letters).

Delivery: at least once. Faust commits a source offset only after flushing the producer
(``Consumer._commit_offsets``), so every output of a committed message is on Kafka; a
replay after a crash re-emits the same records, which sinks deduplicate by ``event_id`` /
``command_id``. A flood of invalid messages stops the worker (:class:`PoisonFlood`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import faust

from core.dlq import InvalidRateGuard, PoisonFlood
from core.errors import ConfigError
from core.kafka_auth import faust_credentials
from core.settings import Settings
from core.topics import raw_topic
from core.venues import load_venues
from schemas.agreements import Agreement, load_agreements
from schemas.models import CONSENT, Purpose
from schemas.registry_client import catalogue_for
from streams.faust_config import faust_settings
from streams.processor import Processor
from streams.steps.expiry import AUTH as EXPIRY_AUTH
from streams.steps.expiry import lapsed

log = logging.getLogger("techne.worker")


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
    app = faust.App(
        settings.worker_id,
        **faust_settings(settings.bootstrap, settings.replication_factor),
        broker_credentials=faust_credentials(settings.kafka_auth()),
        datadir=str(settings.data_dir / "worker"),
        topic_partitions=settings.partitions,
        broker_commit_interval=0.5,
        processing_guarantee="at_least_once",  # exactly_once does not cover our outputs: docs/privacy.md
    )
    raw = app.topic(*(raw_topic(v) for v in venues), key_serializer="raw", value_serializer="raw")
    ledger = app.Table("consent-ledger", default=None, partitions=settings.partitions,
                       key_type=str)  # values: JSON (the app default serializer)

    @app.agent(raw)  # type: ignore[untyped-decorator]
    async def process(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            result = processor.handle(message.value, message.key, message.topic, ledger.get,
                                      header_value(message.headers, "auth"))
            if result.ledger_update is not None:
                ledger[message.key.decode()] = result.ledger_update
            for out in result.outputs:  # straight to Faust's producer, flushed by Faust before each commit
                await app.producer.send(out.topic, out.key, out.value, None, None, out.headers or None)
            try:
                guard.record(result.invalid)
            except PoisonFlood as exc:
                log.critical("%s", exc)
                await app.crash(exc)
                return

    @app.timer(interval=settings.consent_expiry_scan_s)  # type: ignore[untyped-decorator]
    async def expire_consents() -> None:
        """Feed lapsed grants back as ``consent.expired`` events (streams/steps/expiry.py)."""
        at = now()
        for key, entry in list(ledger.items()):
            for venue, record in lapsed(str(key), entry or {}, at, processor.ttls):
                headers = [("event_id", record["event_id"].encode()), ("auth", EXPIRY_AUTH.encode())]
                await app.producer.send(raw_topic(venue), str(key).encode(),
                                        processor.catalogue.encode(CONSENT, record), None, None, headers)

    return app
