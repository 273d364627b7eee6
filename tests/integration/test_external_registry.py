"""The bus with an external schema registry (``TECHNE_SCHEMA_REGISTRY_URL``), end to end.

An external registry assigns its own schema ids, not the shipped manifest's. Every process must
then frame and read records with those ids: the gateway writes raw topics, the worker reads them
and writes partner topics, the partner's sink reads its records and erasure commands. A real
broker, real ``techne`` processes and chDB; the registry is a small Confluent-API server of the
test's own that numbers schemas from :data:`FIRST_ID` (the way a shared registry would, already
holding other teams' schemas). Before the sinks resolved ids through it, every shared record went
to ``dlq.sink`` as ``unexpected_schema`` and nothing reached the partner.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.errors import StoreLocked, StoreMissing
from core.settings import DEFAULT_AGREEMENTS, DEFAULT_VENUES, Settings
from core.topics import bus_topics, ensure_topics
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from sinks.runner import partner_rows
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets
from tests.conftest import TEST_MASTER_KEY, Bus
from tests.producer_env import PRODUCER_ENV
from tests.support.asgi import serving
from tests.support.events import consent_payload, eventually, order_payload, send

pytestmark = pytest.mark.integration
PARTNER, VENUE = "observatoire", "opera-lyon"
FIRST_ID = 40_001


def registry_app() -> Starlette:
    """Confluent's register / lookup / by-id / subjects calls, ids numbered from FIRST_ID."""
    ids: dict[str, int] = {}
    subjects: dict[str, list[str]] = {}

    async def register(request: Request) -> JSONResponse:
        text = (await request.json())["schema"]
        subject = request.path_params["subject"]
        schema_id = ids.setdefault(text, FIRST_ID + len(ids))
        if text not in subjects.setdefault(subject, []):
            subjects[subject].append(text)
        return JSONResponse({"id": schema_id})

    async def lookup(request: Request) -> JSONResponse:
        text = (await request.json())["schema"]
        versions = subjects.get(request.path_params["subject"], [])
        if text not in versions:
            return JSONResponse({"error_code": 40403, "message": "Schema not found"}, status_code=404)
        return JSONResponse({"id": ids[text], "version": versions.index(text) + 1, "schema": text,
                             "subject": request.path_params["subject"]})

    async def by_id(request: Request) -> JSONResponse:
        wanted = int(request.path_params["schema_id"])
        for text, schema_id in ids.items():
            if schema_id == wanted:
                return JSONResponse({"schema": text})
        return JSONResponse({"error_code": 40403, "message": "Schema not found"}, status_code=404)

    async def listing(request: Request) -> JSONResponse:
        return JSONResponse(sorted(subjects))

    return Starlette(routes=[Route("/subjects/{subject}/versions", register, methods=["POST"]),
                             Route("/subjects/{subject}", lookup, methods=["POST"]),
                             Route("/schemas/ids/{schema_id:int}", by_id),
                             Route("/subjects", listing)])


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    with serving(registry_app()) as url:
        yield url


@pytest.fixture(scope="module")
def own_bus(registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """A bus of its own (broker included): the session's bus frames with the manifest's ids."""
    root: Path = tmp_path_factory.mktemp("registry-bus")
    kafka = LocalKafka(root / "kafka")
    kafka.start()
    stack: Stack | None = None
    try:
        venues = sorted(load_venues(DEFAULT_VENUES))
        partner_ids = partners(load_agreements(DEFAULT_AGREEMENTS, set(venues)))
        settings = Settings(data_dir=root / "data", bootstrap=kafka.bootstrap)
        asyncio.run(ensure_topics(kafka.bootstrap, bus_topics(venues, partner_ids), settings.partitions))
        env = {**generate_secrets(venues), "TECHNE_DATAKEY_MASTER_KEYS": json.dumps({"1": TEST_MASTER_KEY}),
               "TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(root / "data"),
               "TECHNE_SINK_BATCH_SECONDS": "0.3", "TECHNE_SCHEMA_REGISTRY_URL": registry_url, **PRODUCER_ENV}
        stack = Stack(env, root / "logs")
        url = stack.start_gateway()
        stack.start_worker()
        stack.start_sink(PARTNER)
        yield Bus(kafka, settings, env, stack, url, partner_ids)
    finally:
        if stack is not None:
            stack.stop_all()
        kafka.stop()


def stored(bus: Bus, event_ids: list[str]) -> list[str] | None:
    """Our orders in the partner's table (None while the starting sink does not serve reads yet)."""
    wanted = ", ".join(f"'{e}'" for e in event_ids)
    sql = f"SELECT toString(event_id) FROM ticket_orders WHERE toString(event_id) IN ({wanted})"  # noqa: S608
    try:
        return [str(r[0]) for r in partner_rows(bus.settings, PARTNER, sql)]
    except (StoreLocked, StoreMissing):  # the sink is starting
        return None


async def schema_ids(bootstrap: str, topic: str, want: int) -> set[int]:
    """The schema ids framing the first ``want`` records of ``topic``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(seen) < want and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                seen += [int.from_bytes(m.value[1:5], "big") for m in batch if m.value]
    finally:
        await consumer.stop()
    return set(seen)


def test_orders_and_erasures_flow_with_the_registry_s_own_ids(own_bus: Bus) -> None:
    bus = own_bus
    send(bus, VENUE, consent_payload("alice", "granted", "cross_venue_analytics", [PARTNER], 3))
    orders = [send(bus, VENUE, order_payload("alice", i)) for i in range(3)]

    rows = eventually(lambda: len(stored(bus, orders) or []) == len(orders) and stored(bus, orders))
    assert sorted(rows or []) == sorted(orders), "the sink read the records framed with the registry's ids"
    ids = asyncio.run(schema_ids(bus.bootstrap, f"partner.{PARTNER}.ticketing", len(orders)))
    assert ids and min(ids) >= FIRST_ID, f"partner records framed with the manifest's ids {ids}, not the registry's"

    send(bus, VENUE, consent_payload("alice", "withdrawn", "cross_venue_analytics", [], 0))
    assert eventually(lambda: stored(bus, orders) == []), "the erasure command was read and executed"
    bus.stack.check()
