"""The gateway's ASGI app: every HTTP door of the venue side, wired in one place.

* ``POST /v1/venues/{venue_id}/events`` and ``.../events/batch`` — canonical events, Standard
  Webhooks signed (events.py);
* ``POST /v1/venues/{venue_id}/sources/{source}`` — vendor pushes (HelloAsso, SecuTix…), each
  authenticated its own way (sources.py, adapters/);
* ``/matomo.php`` and ``/v1/collect/{site_key}`` — web tracking (collector.py);
* ``/openapi.json`` (the published spec) and ``/docs`` (a self-contained page showing it);
  ``/healthz``; ``/metrics/`` (Prometheus).

Every request passes the door (http.Door: the unread rest of a refused body is read before the
answer; an unhandled exception is a counted 500) and every body the parsing door (door.py:
explicit limits, each refusal a 4xx naming it); header sizes and counts are bounded by the
server (server.py, 431).

202 means durably accepted: acknowledged by Kafka (idempotent producer, ``acks=all``) or fsynced
to the spool under ``<data_dir>/gateway/`` (delivery.py), which also keeps the accepted webhook
ids (ledger.py). A rejected request writes nothing. Logs carry venue ids and reasons only:
never a secret, a signature or a raw identifier.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope

from core import metrics
from core.door import LIMITS, Limits
from core.settings import Settings
from core.venues import Venue, load_venues
from producers.adapters.consent import ConsentSources, load_consent_sources
from producers.delivery import Delivery
from producers.gateway import collector, events, openapi, preferences, sources
from producers.gateway.http import Door, not_routed
from producers.ingest import configure
from producers.kafka import EventProducer
from producers.ledger import WebhookLedger
from producers.spool import Spool
from schemas.agreements import Agreement, load_agreements

log = logging.getLogger("techne.gateway")


@dataclass
class Gateway:
    """What every route needs: settings, venues, the subject key, delivery and replay ledger."""

    settings: Settings
    venues: dict[str, Venue]
    subject_key: bytes
    state_dir: Path
    producer: EventProducer
    limits: Limits = LIMITS
    sites: dict[str, Any] = field(default_factory=dict)
    _delivery: Delivery | None = None
    _ledger: WebhookLedger | None = None
    consent: ConsentSources = field(default_factory=ConsentSources)
    agreements: list[Agreement] = field(default_factory=list)
    wrap_delivery: Callable[[Delivery], Delivery] | None = None

    @property
    def delivery(self) -> Delivery:
        assert self._delivery is not None, "gateway not started"
        return self._delivery

    @property
    def ledger(self) -> WebhookLedger:
        assert self._ledger is not None, "gateway not started"
        return self._ledger

    async def start(self) -> None:
        s = self.settings
        self._ledger = WebhookLedger(self.state_dir / "webhooks.sqlite", ttl=s.webhook_replay_ttl_s)
        spool = Spool(self.state_dir / "spool.sqlite", s.spool_max_events)
        self._delivery = Delivery(self.producer, spool, bootstrap=s.bootstrap, auth=s.kafka_auth(),
                                  deadline=s.spool_deadline_s, batch=s.spool_replay_batch)
        if self.wrap_delivery is not None:
            self._delivery = self.wrap_delivery(self._delivery)
        await self._delivery.start()

    async def stop(self) -> None:
        if self._delivery is not None:
            await self._delivery.stop()
        if self._ledger is not None:
            self._ledger.close()


def create_app(settings: Settings, producer: EventProducer | None = None,
               wrap_delivery: Callable[[Delivery], Delivery] | None = None) -> Starlette:
    """Build the gateway. ``producer`` defaults to one on ``settings.bootstrap``; state (spool,
    accepted webhook ids) lives under ``<data_dir>/gateway/``. ``wrap_delivery`` (tests: fault
    injection) wraps the delivery every accepted event goes through."""
    venues = load_venues(settings.venues_file)
    configure(settings)  # schema ids, and the keyring sealing identifiers
    gw = Gateway(settings, venues, settings.require_subject_key(), settings.data_dir / "gateway",
                 producer or EventProducer(settings.bootstrap, timeout=settings.produce_timeout_s,
                                           auth=settings.kafka_auth(), linger_ms=settings.producer_linger_ms))
    gw.consent = load_consent_sources(settings.consent_sources_file)
    gw.wrap_delivery = wrap_delivery
    gw.agreements = load_agreements(settings.agreements_dir, set(venues))
    gw.consent.check_recipients({v: {a.partner for a in gw.agreements if v in a.provider_venues} for v in venues})
    gw.limits = Limits(items=max(LIMITS.items, settings.max_batch_events))
    gw.sites = collector.site_index(settings.web_sites)
    metrics.declare_gateway(venues, settings.venue_silence_hours)

    def venue_of(scope: Scope) -> str:
        """The venue label of a request: its path's venue when known, else ``unknown``."""
        venue = scope.get("path_params", {}).get("venue_id")
        return venue if venue in venues else "unknown"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "spool_depth": gw.delivery.spool.depth,
                             "kafka_connected": gw.producer.started})

    routes: list[BaseRoute] = [
        Route("/v1/venues/{venue_id}/events", events.post_event, methods=["POST"]),
        Route("/v1/venues/{venue_id}/events/batch", events.post_batch, methods=["POST"]),
        *sources.routes(),
        *collector.routes(),
        *preferences.routes(),
        *openapi.routes(),
        Route("/healthz", health),
        Mount("/metrics", app=make_asgi_app(registry=metrics.GATEWAY)),  # its own series only
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(Door, venue_of=venue_of)],
                    exception_handlers={404: not_routed, 405: not_routed})
    app.state.gateway = gw
    return app
