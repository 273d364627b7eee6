"""Run a poll connector (``techne connector poll``): fetch, validate, produce, then save the cursor.

Each round: the connector fetches what changed since its cursor; every mapped event goes
through :func:`producers.ingest.prepare` (event id = uuid5 of venue + source + object key + state)
and the one :class:`EventProducer`; the cursor is saved only once Kafka acknowledged every
event of the round. A mapped event that does not fit the catalogue is reported (key and field
paths) and counted, and does not hold the cursor back (polling again would not fix it).

A round that fails raises a :class:`~core.errors.TechneError` and sends nothing (the cursor is
kept): :class:`~core.errors.Unavailable` when the vendor API or Kafka cannot be reached or
answers 5xx / 429 (retry later), :class:`~core.errors.Refused` when it answers another 4xx (the
credentials), :class:`~core.errors.PayloadRejected` when the API answered something that is not the
documented shape (not JSON, a list where an object is expected…),
:class:`~core.errors.Refused` for an opt-in question the venue's mapping does not know
(:class:`~producers.adapters.consent.UnmappedQuestion`, in French and English). :func:`run`
logs it and tries again at the next interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

import httpx

from core import metrics
from core.errors import ConfigError, PayloadRejected, Refused, TechneError, Unavailable
from core.settings import Settings
from producers.adapters import POLL
from producers.adapters.billetweb import Billetweb
from producers.adapters.consent import UnmappedQuestion, load_consent_sources
from producers.adapters.weezevent import Weezevent
from producers.ingest import EventRejected, Prepared, configure, derived_event_id, prepare
from producers.kafka import EventProducer, ProduceFailed

log = logging.getLogger("techne.poll")


@dataclass
class PollReport:
    fetched: int = 0
    sent: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)


CREDENTIALS = {"billetweb": "user:key", "weezevent": "api_key:access_token"}


def connector_for(settings: Settings, venue_id: str, source: str, base_url: str) -> Billetweb | Weezevent:
    if source not in POLL:
        raise ConfigError(f"no poll connector '{source}' (known: {', '.join(sorted(POLL))})")
    secrets = settings.source_secrets.get(venue_id, {}).get(source, [])
    if not secrets or ":" not in secrets[0].get_secret_value():
        shape = CREDENTIALS.get(source, "user:key")
        raise ConfigError(f"TECHNE_SOURCE_SECRETS needs {{\"{venue_id}\": {{\"{source}\": [\"{shape}\"]}}}}")
    user, key = secrets[0].get_secret_value().split(":", 1)
    consent = load_consent_sources(settings.consent_sources_file).mapping(venue_id, source)
    return POLL[source](venue_id, base_url=base_url, user=user, key=key,
                        state_dir=settings.data_dir / "connectors", consent=consent)


async def poll_once(settings: Settings, venue_id: str, source: str, base_url: str,
                    producer: EventProducer) -> PollReport:
    """One round for one venue's source."""
    connector = connector_for(settings, venue_id, source, base_url)
    report = PollReport()
    cursor = connector.load_cursor()
    async with httpx.AsyncClient(timeout=30) as client:
        try:
            found, new_cursor = await connector.fetch(client, cursor)
        except httpx.HTTPStatusError as exc:  # never str(exc): its URL holds the credentials
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:
                raise Refused(f"{source} API refused the request: HTTP {status} (check the credentials)") from exc
            raise Unavailable(f"{source} API failed: HTTP {status}") from exc
        except httpx.HTTPError as exc:
            raise Unavailable(f"{source} API unreachable: {type(exc).__name__}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # a maintenance page, a proxy's error page
            raise PayloadRejected(f"{source} API answer is not JSON: {type(exc).__name__}") from exc
        except UnmappedQuestion as exc:
            metrics.INGEST_REJECTED.labels(venue=venue_id, reason="unmapped_question").inc()
            raise Refused(f"{exc.fr}\n{exc.en}") from exc
    report.fetched = len(found)
    records: list[Prepared] = []
    for ev in found:
        try:
            records.append(prepare(ev.payload, venue_id=venue_id, subject_key=settings.require_subject_key(),
                                   auth=connector.auth,
                                   fallback_id=derived_event_id(venue_id, source, ev.key)))
        except EventRejected as exc:
            report.rejected.append({"key": ev.key, "errors": exc.errors})
            metrics.INGEST_REJECTED.labels(venue=venue_id, reason=f"{source}_unmappable").inc()
    try:
        await producer.send_batch(records)
    except ProduceFailed as exc:
        raise ProduceFailed(f"Kafka did not acknowledge the round ({exc}); cursor kept") from exc
    connector.save_cursor(new_cursor)
    report.sent = len(records)
    for r in records:
        metrics.INGEST_EVENTS.labels(venue=venue_id, event_type=r.event_type).inc()
    return report


async def run(settings: Settings, venue_id: str, source: str, base_url: str, *, interval: float,
              once: bool) -> list[PollReport]:
    """Poll every ``interval`` seconds (one round with ``once``); a failed round is retried next time."""
    configure(settings)
    producer = EventProducer(settings.bootstrap, timeout=settings.produce_timeout_s, auth=settings.kafka_auth(),
                             client_id=f"techne-poll-{source}")
    await producer.start()
    reports = []
    try:
        while True:
            try:
                reports.append(await poll_once(settings, venue_id, source, base_url, producer))
                log.info("%s/%s: %d fetched, %d sent, %d rejected", venue_id, source, reports[-1].fetched,
                         reports[-1].sent, len(reports[-1].rejected))
            except TechneError as exc:
                if once:
                    raise
                log.warning("%s/%s round failed (retrying in %.0fs): %s", venue_id, source, interval, exc)
            if once:
                return reports
            await asyncio.sleep(interval)
    finally:
        await producer.stop()
