"""The one Faust app of the bus and its agent (a thin shell around the pure steps).

One agent consumes every venue's raw topic (co-partitioned, keyed by subject reference):

* consent events update the consent ledger (a changelog-backed table, so it survives
  restarts and rebalances), resolved by event time;
* ticket events are routed: per agreement, shared (pseudonymized, projected, produced to
  ``partner.<id>.ticketing``) or dropped for lack of consent (counted, audited, not DLQ);
* undecodable or unroutable messages go to ``techne.dlq`` with stage/reason headers.

Every decision is written to ``techne.audit`` (JSON, no personal data). Faust commits a
source offset only after flushing what the agent produced for it (at least once); partner
sinks deduplicate by ``event_id``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import faust

from schemas import CATALOGUE
from schemas.models import CONSENT, SHARED_TICKET_ORDER, TICKET_ORDER
from streams.agreements import Agreement, load_agreements
from streams.steps.consent import apply_consent
from streams.steps.route import route
from streams.topics import AUDIT, DLQ, raw_topic
from techne import metrics
from techne.errors import InvalidMessage
from techne.settings import Settings
from techne.venues import load_venues

log = logging.getLogger("techne.worker")


def audit_record(record: dict[str, Any], outcome: str, reason: str, *, agreement_id: str | None = None,
                 partner: str | None = None, purpose: str | None = None) -> bytes:
    """One audit line: what was decided for which event, why, for whom. No identifiers."""
    return json.dumps({
        "event_id": str(record.get("event_id", "")), "venue_id": record.get("venue_id"),
        "event_type": record.get("event_type"), "outcome": outcome, "reason": reason,
        "agreement_id": agreement_id, "partner": partner, "purpose": purpose,
        "decided_at": datetime.now(UTC).isoformat(),
    }).encode()


def create_app(settings: Settings, agreements: list[Agreement] | None = None,
               venues: list[str] | None = None) -> faust.App:
    """Build the worker app from validated settings, agreements and the venue list."""
    venues = venues or sorted(load_venues(settings.venues_file))
    if agreements is None:
        agreements = load_agreements(settings.agreements_dir, set(venues))
    key_version, pseudonym_key = settings.current_pseudonym_key()
    app = faust.App(
        "techne-worker",
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir / "worker"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        web_enabled=False,
    )
    raw = app.topic(*(raw_topic(v) for v in venues), key_serializer="raw", value_serializer="raw")
    ledger = app.Table("consent-ledger", default=None, partitions=settings.partitions,
                       key_type=str)  # values: JSON (the app default serializer)
    audit = app.topic(AUDIT, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(DLQ, key_serializer="raw", value_serializer="raw")
    partner_topics: dict[str, faust.TopicT] = {}

    def out_topic(name: str) -> faust.TopicT:
        if name not in partner_topics:
            partner_topics[name] = app.topic(name, key_serializer="raw", value_serializer="raw")
        return partner_topics[name]

    async def dead_letter(value: bytes, key: bytes | None, source: str, exc: InvalidMessage) -> None:
        metrics.DEAD_LETTERS.labels(stage=exc.stage, reason=exc.reason).inc()
        log.warning("dead letter from %s: %s", source, exc)
        await dlq.send(key=key, value=value, headers=[
            ("techne-stage", exc.stage.encode()), ("techne-reason", exc.reason.encode()),
            ("techne-detail", exc.detail[:500].encode()), ("techne-source-topic", source.encode())])

    @app.agent(raw)  # type: ignore[untyped-decorator]
    async def process(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            value, key = message.value, message.key
            subject = key.decode() if isinstance(key, bytes) else str(key)
            try:
                name, record = CATALOGUE.decode(value)
            except InvalidMessage as exc:
                await dead_letter(value, key, message.topic, exc)
                continue
            metrics.STREAM_EVENTS.labels(event_type=record["event_type"]).inc()
            if name == CONSENT:
                entry, changed = apply_consent(ledger.get(subject), record)
                if changed:
                    ledger[subject] = entry
                outcome = "applied" if changed else "stale"
                metrics.CONSENT_UPDATES.labels(purpose=record["purpose"], outcome=outcome).inc()
                await audit.send(key=str(record["event_id"]).encode(),
                                 value=audit_record(record, "consent_recorded", outcome, purpose=record["purpose"]))
                continue
            if name != TICKET_ORDER:
                await dead_letter(value, key, message.topic, InvalidMessage("route", "unexpected_schema", name))
                continue
            try:
                decisions = route(record, agreements, ledger.get(subject), key_version=key_version, key=pseudonym_key)
            except ValueError as exc:
                await dead_letter(value, key, message.topic, InvalidMessage("route", "unshareable", str(exc)))
                continue
            for d in decisions:
                if d.outcome == "shared" and d.record is not None and d.topic is not None:
                    await out_topic(d.topic).send(
                        key=d.record["subject_pseudonym"].encode(),
                        value=CATALOGUE.encode(SHARED_TICKET_ORDER, d.record))
                    metrics.ROUTED.labels(partner=d.partner, purpose=d.purpose).inc()
                elif d.outcome == "dropped":
                    metrics.CONSENT_DROPS.labels(partner=d.partner, purpose=d.purpose).inc()
                await audit.send(key=str(record["event_id"]).encode(),
                                 value=audit_record(record, d.outcome, d.reason, agreement_id=d.agreement_id,
                                                    partner=d.partner, purpose=d.purpose))

    return app
