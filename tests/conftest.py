"""Shared fixtures: one real local Kafka broker per test session, and the bus's environment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import DEFAULT_AGREEMENTS, DEFAULT_VENUES, Settings
from core.topics import bus_topics, ensure_topics
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets
from tests.producer_env import PRODUCER_ENV

TEST_MASTER_KEY = "test-master-key-not-secret-0123456789"


@pytest.fixture(autouse=True, scope="session")
def sealing_keyring() -> Iterator[None]:
    """In-process producers (prepare() called by a test) seal like every producer process: a
    keyring on a test master key. Processes the tests start get their own from their env."""
    from core.datakeys import MasterKeys
    from producers import ingest
    from producers.keyring import Keyring

    ingest.use_keyring(Keyring(MasterKeys({1: TEST_MASTER_KEY}, 1)))
    yield


@dataclass
class Bus:
    """The running infrastructure a test talks to."""

    kafka: LocalKafka
    settings: Settings
    env: dict[str, str]
    stack: Stack
    gateway_url: str
    partners: list[str]

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def venue_secret(self, venue: str) -> str:
        return str(json.loads(self.env["TECHNE_VENUE_SECRETS"])[venue][0])


@pytest.fixture
def worker(bus: Bus) -> Bus:
    """The bus with a stream worker running (started once, shared by the tests that need it)."""
    if "worker" not in bus.stack.services:
        bus.stack.start_worker()
    return bus


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def bus(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    data_dir: Path = tmp_path_factory.mktemp("techne-data")
    venues = sorted(load_venues(DEFAULT_VENUES))
    partner_ids = partners(load_agreements(DEFAULT_AGREEMENTS, set(venues)))
    env = {**generate_secrets(venues), "TECHNE_DATAKEY_MASTER_KEYS": json.dumps({"1": TEST_MASTER_KEY}),
           "TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(data_dir),
           "TECHNE_SINK_BATCH_SECONDS": "0.3", **PRODUCER_ENV}
    settings = Settings(data_dir=data_dir, bootstrap=kafka.bootstrap)
    asyncio.run(ensure_topics(kafka.bootstrap, bus_topics(venues, partner_ids), settings.partitions))
    stack = Stack(env, data_dir / "logs")
    url = stack.start_gateway()
    try:
        yield Bus(kafka, settings, env, stack, url, partner_ids)
    finally:
        stack.stop_all()
