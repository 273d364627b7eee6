"""Helpers of the sink tests: agreements on disk, framed records, producing to the real broker,
and spawning real ``techne sink`` processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from core.topics import partitions_of
from schemas.codec import CATALOGUE
from schemas.models import ERASURE_COMMAND, SHARED_TICKET_ORDER

REPO = Path(__file__).resolve().parents[2]
AGREEMENT_ID = "dsa-test"


def write_agreement(directory: Path, partner: str, *, agreement_id: str = AGREEMENT_ID, retention_days: int = 400,
                    allowed: Iterable[str] = ("production", "performance_id", "quantity", "departement")) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{agreement_id}-{partner}.yaml"
    path.write_text(yaml.safe_dump({
        "id": agreement_id, "provider_venues": ["opera-lyon", "chaillot"], "partner": partner,
        "purposes": ["cross_venue_analytics", "marketing"], "event_types": ["ticket.order_placed"],
        "allowed_fields": list(allowed), "retention_days": retention_days,
        "valid_from": "2026-01-01", "valid_until": "2030-12-31",
    }))
    return path


def shared_record(i: int, *, at: datetime | None = None, subject: str | None = None, venue: str = "opera-lyon",
                  purpose: str = "cross_venue_analytics", agreement_id: str = AGREEMENT_ID,
                  **extra: Any) -> dict[str, Any]:
    at = at or datetime.now(UTC) - timedelta(minutes=i % 1000)
    record: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "event_type": "ticket.order_placed", "occurred_at": at,
        "received_at": at + timedelta(seconds=1), "venue_id": venue, "agreement_id": agreement_id,
        "purpose": purpose, "subject_pseudonym": subject or f"{i:064x}", "pseudonym_key_version": 1,
        "departement": f"{69 + i % 10}", "production": "Carmen", "performance_id": f"perf-{i % 7}",
        "quantity": 1 + i % 4, "amount_minor": 4400, "currency": "EUR",
    }
    record.update(extra)
    return record


def shared_value(i: int, **kw: Any) -> bytes:
    return CATALOGUE.encode(SHARED_TICKET_ORDER, shared_record(i, **kw))


def erasure_value(partner: str, subject: str, *, venue: str = "opera-lyon", purposes: Iterable[str] = (),
                  occurred_at: datetime | None = None, command_id: str | None = None) -> bytes:
    now = datetime.now(UTC)
    return CATALOGUE.encode(ERASURE_COMMAND, {
        "command_id": command_id or str(uuid.uuid4()), "partner": partner, "venue_id": venue,
        "subject_pseudonym": subject, "pseudonym_key_version": 1, "purposes": list(purposes),
        "reason": "consent_withdrawn", "occurred_at": occurred_at or now, "issued_at": now,
    })


async def produce(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes] | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=10)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=(keys[i] if keys else str(i).encode()))
                   for i, v in enumerate(values)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def spawn_sink(partner: str, env: dict[str, str], log: Path, *extra_env: tuple[str, str]) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, **dict(extra_env), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        args = ["sink", "--audit"] if partner == "--audit" else ["sink", "--partner", partner]
        return subprocess.Popen([sys.executable, "-m", "tests.support.faults", *args], cwd=REPO, env=full,
                                stdout=out, stderr=subprocess.STDOUT)


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the offsets ``group`` committed on ``topic`` (messages it is done with)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset > 0)
    finally:
        await admin.close()


async def group_lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages on ``topics`` not yet committed by consumer group ``group``."""
    parts = await partitions_of(bootstrap, topics)
    tps = [TopicPartition(t, p) for t in topics for p in parts.get(t, [])]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            lag += max(0, ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0))
        return lag
    finally:
        await consumer.stop()
        await admin.close()


def wait_caught_up(bootstrap: str, partner: str, proc: subprocess.Popen[bytes], log: Path,
                   timeout: float = 120) -> None:
    """Until the sink committed everything on its topics (``partner="--audit"``: the audit sink)."""
    if partner == "--audit":
        group, topics = "techne-audit-sink", ["techne.audit"]
    else:
        group, topics = f"techne-sink.{partner}", [f"partner.{partner}.ticketing", f"partner.{partner}.erasure"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sink exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if asyncio.run(group_lag(bootstrap, group, topics)) == 0:
                return
        except KafkaError:
            pass  # e.g. the group coordinator is not ready yet on a fresh broker
        time.sleep(0.3)
    raise AssertionError(f"sink {partner} did not catch up:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
