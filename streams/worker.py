"""Run the stream worker: create the bus topics, then hand the app to Faust's worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import faust

from core import metrics
from core.settings import Settings
from core.topics import bus_topics, ensure_topics
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from streams.app import create_app
from streams.faust_config import quiet_logging


def run_worker(settings: Settings, loglevel: str = "WARN", clock: Callable[[], datetime] | None = None) -> None:
    """Blocks until the worker is stopped (SIGTERM / Ctrl-C); ``clock``: see :func:`create_app`."""
    venues = sorted(load_venues(settings.venues_file))
    agreements = load_agreements(settings.agreements_dir, set(venues))
    asyncio.run(ensure_topics(settings.bootstrap, bus_topics(venues, partners(agreements)), settings.partitions,
                              settings.replication_factor))
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings, agreements, venues, clock)
    metrics.declare_worker({(a.partner, p) for a in agreements for p in a.purposes})
    metrics.serve(settings.metrics_port, settings.metrics_host, metrics.WORKER)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    quiet_logging(logging.getLevelName(loglevel.upper().replace("WARN", "WARNING").replace("WARNINGING", "WARNING")))
    worker.execute_from_commandline()
