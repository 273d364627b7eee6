"""``techne sibil`` reading a venue's raw topic on the real broker: the same totals as the pure
aggregation, other event types and undecodable records skipped, nothing committed."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from core.settings import Settings
from core.topics import ensure_topics, raw_topic
from insights.sibil import Quarter, declare
from insights.sibil_source import read_venue_events
from schemas.codec import CATALOGUE
from schemas.models import EVENT_SCHEMAS
from sinks.reader import read_rows
from sinks.runner import partner_ref
from techne.local import LocalKafka
from tests.conftest import Bus
from tests.support import sibil as sibil_support
from tests.support.events import send
from tests.support.sibil import event, scenario

pytestmark = pytest.mark.integration


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send_and_wait(topic, value, key=f"subject-{i % 5}".encode())
    finally:
        await producer.stop()


def directory(tmp_path: Path, venue: str) -> dict[str, str]:
    """The environment of a CLI run whose venue directory names ``venue`` (a venue of this test only)."""
    path = tmp_path / "venues.yaml"
    path.write_text(f"venues:\n  - id: {venue}\n    name: Lieu {venue}\n", encoding="utf-8")
    return {**os.environ, "TECHNE_VENUES_FILE": str(path)}


def test_declaration_from_the_raw_topic(kafka: LocalKafka, tmp_path: Path) -> None:
    venue = f"sibil-{uuid.uuid4().hex[:8]}"
    records = [*scenario(), event("consent.granted", purpose="cross_venue_analytics", recipients=["observatoire"])]
    values = []
    for record in records:
        record = {**record, "venue_id": venue}
        values.append(CATALOGUE.encode(EVENT_SCHEMAS[record["event_type"]], record))
    values.append(b"\x00\x00\x00\x00\x01not avro")  # an undecodable record is counted and skipped
    asyncio.run(ensure_topics(kafka.bootstrap, [raw_topic(venue)], 3))
    asyncio.run(produce(kafka.bootstrap, raw_topic(venue), values))

    settings = Settings(bootstrap=kafka.bootstrap)
    events, coverage = asyncio.run(read_venue_events(settings, venue))
    assert coverage.records == len(values) and coverage.undecodable == 1 and not coverage.truncated
    assert coverage.ticketing == len(records) - 1
    assert all("subject" not in e for e in events)
    totals = declare(events, venue, Quarter.parse("2026Q4")).totals()
    assert totals == {"performances": 2, "paid": 8, "free": 3, "receipts_minor": 20800, "fees_minor": 200}

    target = tmp_path / "decl.csv"
    done = subprocess.run([sys.executable, "-m", "techne.cli", "sibil", "--venue", venue, "--quarter", "2026Q4",
                           "--from-topic", "--bootstrap", kafka.bootstrap, "--csv", str(target)],
                          capture_output=True, text=True, timeout=120, check=False, env=directory(tmp_path, venue))
    assert done.returncode == 0, done.stderr
    assert "8 billet(s) payant(s), 3 exonéré(s), recette TTC 208.00" in done.stdout
    assert "1 message(s) illisible(s)" in done.stdout
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert [(r["representation"], r["billets_total"]) for r in rows] == [("P1", "7"), ("P2", "4")]
    # a second read sees the same thing: nothing was committed, no group was joined
    assert asyncio.run(read_venue_events(settings, venue))[1].records == len(values)


def test_unknown_venue_is_a_clear_error(kafka: LocalKafka, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "techne.cli", "sibil", "--venue", "nowhere-venue", "--quarter",
                           "2026Q4", "--from-topic", "--bootstrap", kafka.bootstrap], capture_output=True, text=True,
                          timeout=120, check=False, env=directory(tmp_path, "nowhere-venue"))
    assert done.returncode == 2 and "raw.nowhere-venue does not exist" in done.stderr


def _renamed(body: dict[str, Any], run: str) -> dict[str, Any]:
    """The scenario's body with its order, ticket and performance ids made unique to this run (the
    session's venue store is shared with other tests)."""
    out = dict(body)
    for name in ("order_id", "ticket_id", "old_ticket_id", "new_ticket_id", "performance_id", "old_performance_id",
                 "new_performance_id"):
        if out.get(name):
            out[name] = f"{out[name]}-{run}"
    if out.get("ticket_ids"):
        out["ticket_ids"] = [f"{t}-{run}" for t in out["ticket_ids"]]
    return out


def test_declaration_from_the_venue_store_end_to_end(worker: Bus, tmp_path: Path) -> None:
    """Webhooks -> gateway -> raw topic -> worker -> venue.gemeaux.ticketing -> the venue's own
    store -> ``techne sibil`` (default source): a past quarter whole, the declarant from the
    directory, the same ticket counts as from the raw events."""
    bus, venue, run = worker, sibil_support.VENUE, uuid.uuid4().hex[:8]
    sibil_support.BODIES.clear()
    scenario()
    bodies = [_renamed(b, run) for b in sibil_support.BODIES]
    first_ids: dict[str, str] = {}
    for body in bodies:  # O1's re-delivery keeps its (new) event id: taken once
        body["event_id"] = first_ids.setdefault(body["event_id"], str(uuid.uuid4()))
    bus.stack.start_venue_sink(venue)
    try:
        bus.stack.wait_group_stable(bus.settings.worker_id, bus.bootstrap)
        for body in bodies:
            send(bus, venue, body)
        expected = len({b["event_id"] for b in bodies if b.get("performance_id") or b.get("new_performance_id")})
        ref = partner_ref(bus.settings, f"venue:{venue}")
        sql = (f"SELECT uniqExact(event_id) FROM {ref.database}.ticket_orders "  # noqa: S608
               f"WHERE endsWith(ifNull(performance_id, ''), '-{run}')")
        deadline, stored = time.monotonic() + 90, 0
        while time.monotonic() < deadline:
            stored = int(read_rows(bus.settings, ref, sql)[0][0])
            if stored >= expected:
                break
            time.sleep(0.5)
        assert stored == expected, f"{stored} of {expected} ticketing rows reached the venue store"
        for quarter, wanted in (("2026Q4", {f"P1-{run}": ("5", "2", "7"), f"P2-{run}": ("3", "1", "4")}),
                                ("2026Q3", {f"P0-{run}": ("2", "0", "2")})):
            target = tmp_path / f"{quarter}.csv"
            done = subprocess.run([sys.executable, "-m", "techne.cli", "sibil", "--venue", venue, "--quarter", quarter,
                                   "--csv", str(target)], capture_output=True, text=True, timeout=120, check=False,
                                  env={**os.environ, **bus.env})
            assert done.returncode == 0, done.stderr
            assert "Déclarant : Les Gémeaux – Scène nationale de Sceaux" in done.stdout
            assert "type de lieu : Scène nationale" in done.stdout and "SIRET manquant" in done.stdout
            rows = {r["representation"]: r for r in csv.DictReader(
                io.StringIO(target.read_text(encoding="utf-8-sig")), delimiter=";")}
            got = {p: (rows[p]["billets_payants"], rows[p]["billets_exoneres"], rows[p]["billets_total"])
                   for p in wanted if p in rows}
            assert got == wanted, quarter
            assert all(r["type_lieu"] == "Scène nationale" for r in rows.values())
    finally:
        bus.stack.stop(f"sink-venue-{venue}")
