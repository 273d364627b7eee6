"""Run the stream worker: create the bus topics, then hand the app to Faust's worker.

The consent ledger's changelog topic (``<worker id>-consent-ledger-changelog``, compacted, as
many partitions as the raw topics) is created here too, before Faust starts: when Faust creates
it itself, the consumer group can form while the new topic has no partition leader yet: the
group's metadata snapshot then counts zero partitions for it, and the first consent crashes
the agent (``PartitionsMismatch``), losing that ledger update. So the worker creates it and
waits until every partition has a leader before Faust starts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from core import metrics
from core.kafka_auth import aiokafka_kwargs
from core.settings import Settings
from core.topics import LEDGER_CHANGELOG, TopicPolicy, bus_topics, ensure_bus_topics, raise_refused_topics
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from streams.app import create_app
from streams.faust_config import quiet_logging


async def ensure_ledger_changelog(settings: Settings) -> None:
    """Create the consent ledger's compacted changelog topic if it is missing (module doc)."""
    name = f"{settings.worker_id}-{LEDGER_CHANGELOG}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, **aiokafka_kwargs(settings.kafka_auth()))
    await admin.start()
    try:
        if name not in set(await admin.list_topics()):
            raise_refused_topics(await admin.create_topics([NewTopic(
                name, settings.partitions, settings.replication_factor,
                topic_configs=TopicPolicy.from_settings(settings).configs(name))]))
        deadline = time.monotonic() + LEADER_WAIT_S
        while time.monotonic() < deadline:
            (described,) = await admin.describe_topics([name])
            partitions = described.get("partitions") or []
            if partitions and all(p.get("leader", -1) >= 0 for p in partitions):
                return
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


LEADER_WAIT_S = 30.0


def run_worker(settings: Settings, loglevel: str = "WARN", clock: Callable[[], datetime] | None = None) -> None:
    """Blocks until the worker is stopped (SIGTERM / Ctrl-C); ``clock``: see :func:`create_app`."""
    venues = sorted(load_venues(settings.venues_file))
    agreements = load_agreements(settings.agreements_dir, set(venues))
    asyncio.run(ensure_ledger_changelog(settings))  # compacted within the bound: holds identifiers while granted
    asyncio.run(ensure_bus_topics(settings, bus_topics(venues, partners(agreements)),  # refuses retention > bounds
                                  also_check=[f"{settings.worker_id}-{LEDGER_CHANGELOG}"]))
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings, agreements, venues, clock)
    metrics.declare_worker({(a.partner, p) for a in agreements for p in a.purposes})
    metrics.serve(settings.metrics_port, settings.metrics_host, metrics.WORKER)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    quiet_logging(logging.getLevelName(loglevel.upper().replace("WARN", "WARNING").replace("WARNINGING", "WARNING")))
    worker.execute_from_commandline()
