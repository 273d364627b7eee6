"""``techne sibil`` reading a venue's raw topic on the real broker: the same totals as the pure
aggregation, other event types and undecodable records skipped, nothing committed."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from core.settings import Settings
from core.topics import ensure_topics, raw_topic
from insights.sibil import Quarter, declare
from insights.sibil_source import read_venue_events
from schemas.codec import CATALOGUE
from schemas.models import EVENT_SCHEMAS
from techne.local import LocalKafka
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
                           "--bootstrap", kafka.bootstrap, "--csv", str(target)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "8 billet(s) payant(s), 3 exonéré(s), recette TTC 208.00" in done.stdout
    assert "1 message(s) illisible(s)" in done.stdout
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert [(r["representation"], r["billets_total"]) for r in rows] == [("P1", "7"), ("P2", "4")]
    # a second read sees the same thing: nothing was committed, no group was joined
    assert asyncio.run(read_venue_events(settings, venue))[1].records == len(values)


def test_unknown_venue_is_a_clear_error(kafka: LocalKafka) -> None:
    done = subprocess.run([sys.executable, "-m", "techne.cli", "sibil", "--venue", "nowhere-venue", "--quarter",
                           "2026Q4", "--bootstrap", kafka.bootstrap], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2 and "raw.nowhere-venue does not exist" in done.stderr
