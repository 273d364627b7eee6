"""Bounded lifetimes and crypto-shredding on the real broker, with the real gateway and workers.

* Topics are created with the configured retention; a start (``techne worker``) against topics
  that keep data longer than the bound refuses with a clear line; an external cluster only warns.
* After an erasure request, the raw topic and the dead letters read from offset zero with the
  bus's own decoder (catalogue + key store + sealer) hold no direct identifier of that person,
  while the same read found them before (negative control) and still finds the other person's;
  a full replay by a fresh worker group brings nothing of theirs to any partner, and the other
  person's orders again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from core.datakeys import MasterKeys
from core.errors import ConfigError, InvalidMessage
from core.settings import Settings
from core.topics import (
    AUDIT,
    KEYS,
    TopicPolicy,
    check_topics,
    ensure_bus_topics,
    ensure_topics,
    partitions_of,
    raw_topic,
    topic_configs,
)
from producers.gateway.signatures import sign
from schemas import CATALOGUE
from schemas.sealing import SEALER
from streams.keystore import KeyStore
from streams.processor import dead_letter
from techne.accounting import group_lag
from techne.stack import Stack
from tests.conftest import Bus

VENUE, OBS = "opera-lyon", "observatoire"
NOW = datetime.now(UTC)


def test_topics_get_the_configured_retention_and_longer_ones_are_refused(bus: Bus, caplog: Any) -> None:
    kafka, tag = bus.kafka, uuid.uuid4().hex[:8]
    raw, dlq = raw_topic(f"retention-{tag}"), f"dlq.retention-{tag}"
    settings = Settings(bootstrap=kafka.bootstrap, raw_retention_hours=2, dlq_retention_hours=3)
    assert sorted(asyncio.run(ensure_bus_topics(settings, [raw, dlq]))) == sorted([raw, dlq])
    configs = _wait(lambda: (c := asyncio.run(topic_configs(kafka.bootstrap, [raw, dlq, KEYS]))).keys() >= {raw, dlq}
                    and c, "the new topics' metadata", 30)
    assert configs[raw]["retention.ms"] == str(2 * 3_600_000) and configs[dlq]["retention.ms"] == str(3 * 3_600_000)
    assert configs[KEYS]["cleanup.policy"] == "compact"  # created by the session's bus like this

    stricter = Settings(bootstrap=kafka.bootstrap, raw_retention_hours=1, dlq_retention_hours=3)
    with pytest.raises(ConfigError) as refused:
        asyncio.run(ensure_bus_topics(stricter, [raw, dlq]))
    assert f"{raw}: retention.ms=7200000 exceeds the bound 3600000 ms" in str(refused.value)
    assert dlq not in str(refused.value)

    external = Settings(bootstrap=kafka.bootstrap, raw_retention_hours=1, kafka_topics_owned=False)
    with caplog.at_level(logging.WARNING, logger="techne.topics"):
        asyncio.run(ensure_bus_topics(external, [raw]))
    assert any("RETENTION ABOVE THE BOUND" in r.getMessage() and raw in r.getMessage() for r in caplog.records)

    # a topic somebody made without the bus: the broker's default (7 days) is above a 1-day bound
    foreign = f"raw.foreign-{tag}"
    asyncio.run(_create_plain(kafka.bootstrap, foreign))
    assert asyncio.run(check_topics(kafka.bootstrap, [foreign], TopicPolicy(raw_hours=24)))


async def _create_plain(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


def test_a_topic_the_broker_refuses_to_create_is_a_clear_error(bus: Bus) -> None:
    """aiokafka returns per-topic creation errors instead of raising them: a topic the broker
    refused (here a replication factor above the one broker) must not pass for created."""
    name = raw_topic(f"refused-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ConfigError, match=f"refused to create topics: {name} \\(InvalidReplicationFactor"):
        asyncio.run(ensure_topics(bus.kafka.bootstrap, [name], 1, replication=3))
    assert asyncio.run(partitions_of(bus.kafka.bootstrap, [name])).get(name, []) == []


def test_worker_start_refuses_topics_retaining_longer_than_the_bound(bus: Bus) -> None:
    env = {**os.environ, **bus.env, "TECHNE_RAW_RETENTION_HOURS": "1"}  # session topics keep 168 h
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "worker"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"{raw_topic(VENUE)}: retention.ms=604800000 exceeds the bound 3600000 ms" in out, out[-2000:]


def _send(bus: Bus, payload: dict[str, Any]) -> str:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json",
               **sign(body, secret=bus.venue_secret(VENUE), msg_id=f"msg_{uuid.uuid4().hex}", timestamp=time.time())}
    resp = httpx.post(f"{bus.gateway_url}/v1/venues/{VENUE}/events", content=body, headers=headers, timeout=30)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["event_id"])


def _consent(email: str) -> dict[str, Any]:
    return {"type": "consent.granted", "occurred_at": (NOW - timedelta(days=2)).isoformat(),
            "customer": {"email": email}, "purpose": "cross_venue_analytics", "recipients": [OBS],
            "recipient_list_version": "2026-09", "proof_ref": "form:test"}


def _order(email: str, customer_id: str) -> dict[str, Any]:
    return {"type": "ticket.order_placed", "event_id": str(uuid.uuid4()), "occurred_at": NOW.isoformat(),
            "customer": {"email": email, "customer_id": customer_id, "last_name": "Shredded", "postal_code": "69003"},
            "order_id": f"O-{uuid.uuid4().hex[:8]}", "production": "Tosca", "performance_id": "perf-1",
            "performance_at": (NOW + timedelta(days=30)).isoformat(), "discipline": "opera", "tariff": "plein",
            "channel": "web", "quantity": 1, "amount_minor": 4500}


async def _records(bootstrap: str, topic: str, start: dict[int, int] | None = None) -> list[Any]:
    parts = (await partitions_of(bootstrap, [topic]))[topic]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        for tp in tps:
            if start:
                consumer.seek(tp, start.get(tp.partition, 0))
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(batch)
        return out
    finally:
        await consumer.stop()


async def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    parts = (await partitions_of(bootstrap, [topic]))[topic]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def _opened(bus: Bus, topics: list[str]) -> list[dict[str, Any]]:
    """Every record of ``topics`` from offset zero as the bus decodes it: catalogue, then the
    sealed fields opened with a key store freshly read from the key topic."""
    store = KeyStore(bus.bootstrap, MasterKeys.from_settings(Settings(_env_file=None, **_secret_env(bus))))
    await store.start(tail=False)
    try:
        out = []
        for topic in topics:
            for msg in await _records(bus.bootstrap, topic):
                try:
                    name, record = CATALOGUE.decode(msg.value)
                    subject = msg.key.decode() if msg.key else ""
                    SEALER.open(name, record, lambda kid, s=subject: store.lookup(s, kid))
                except InvalidMessage:
                    continue  # other tests' poison
                out.append(record)
        return out
    finally:
        await store.stop()


def _secret_env(bus: Bus) -> dict[str, Any]:
    return {"datakey_master_keys": json.loads(bus.env["TECHNE_DATAKEY_MASTER_KEYS"])}


def _found(records: list[dict[str, Any]], needle: str) -> bool:
    return any(needle in json.dumps(r, default=str) for r in records)


async def _dead_letter(bus: Bus, event_id: str) -> None:
    """Put the raw record of ``event_id`` on dlq.route as the worker would dead-letter it."""
    raw = next(m for m in await _records(bus.bootstrap, raw_topic(VENUE))
               if (b"event_id", event_id.encode()) in [(k.encode(), v) for k, v in m.headers])
    letter = dead_letter(raw.value, raw.key, raw_topic(VENUE), InvalidMessage("route", "test_letter", "injected"))
    producer = AIOKafkaProducer(bootstrap_servers=bus.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(letter.topic, letter.value, key=letter.key, headers=letter.headers)
    finally:
        await producer.stop()


def _wait(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _partner_event_ids(bus: Bus, start: dict[int, int] | None = None) -> set[str]:
    records = asyncio.run(_records(bus.bootstrap, f"partner.{OBS}.ticketing", start))
    return {str(CATALOGUE.decode(m.value)[1]["event_id"]) for m in records}


def test_erasure_shreds_every_copy_and_a_replay_brings_nothing_of_theirs(worker: Bus) -> None:
    bus, tag = worker, uuid.uuid4().hex[:8]
    gone, kept = f"efface-{tag}@exemple.fr", f"garde-{tag}@exemple.fr"
    for email in (gone, kept):
        _send(bus, _consent(email))
    ids = {gone: f"C-efface-{tag}", kept: f"C-garde-{tag}"}
    orders = {email: {_send(bus, _order(email, ids[email])) for _ in range(2)} for email in (gone, kept)}
    _wait(lambda: orders[gone] | orders[kept] <= _partner_event_ids(bus), "both people's orders at the partner")
    asyncio.run(_dead_letter(bus, next(iter(orders[gone]))))

    raw_values = [m.value for m in asyncio.run(_records(bus.bootstrap, raw_topic(VENUE)))]
    assert not [v for v in raw_values if gone.encode() in v or kept.encode() in v]  # sealed before Kafka
    before = asyncio.run(_opened(bus, [raw_topic(VENUE), "dlq.route"]))
    assert _found(before, gone) and _found(before, f"C-efface-{tag}") and _found(before, kept)  # negative control
    dlq_before = asyncio.run(_opened(bus, ["dlq.route"]))
    assert _found(dlq_before, gone)

    erasure_id = _send(bus, {"type": "erasure.requested", "occurred_at": NOW.isoformat(),
                             "customer": {"email": gone}, "request_id": f"DPO-{tag}"})

    def shredding_audited() -> bool:
        lines = [json.loads(line) for m in asyncio.run(_records(bus.bootstrap, AUDIT))
                 for line in m.value.split(b"\n") if erasure_id.encode() in m.value]
        return any(d["outcome"] == "keys_shredded" and d["event_id"] == erasure_id for d in lines)

    _wait(shredding_audited, "the audit line of the shredding")
    after = asyncio.run(_opened(bus, [raw_topic(VENUE), "dlq.route"]))
    for needle in (gone, f"C-efface-{tag}"):
        assert not _found(after, needle), [r for r in after if needle in json.dumps(r, default=str)]
    assert _found(after, kept) and _found(after, f"C-garde-{tag}")
    assert not _found(asyncio.run(_opened(bus, ["dlq.route"])), gone)

    # a full replay: a fresh worker group reads every raw topic from offset zero
    start = asyncio.run(_ends(bus.bootstrap, f"partner.{OBS}.ticketing"))
    group = f"replay-{tag}"
    replay = Stack({**bus.env, "TECHNE_WORKER_ID": group, "TECHNE_DATA_DIR": str(bus.settings.data_dir / group)},
                   bus.settings.data_dir / "logs-replay")
    replay.start_worker(f"worker-{group}")
    try:
        _wait(lambda: orders[kept] <= _partner_event_ids(bus, start), "the replayed orders of the other person", 120)
        _wait(lambda: asyncio.run(group_lag(bus.bootstrap, group, [raw_topic(VENUE)])) == 0, "the replay", 120)
        replayed = _partner_event_ids(bus, start)
        assert not orders[gone] & replayed
        assert orders[kept] <= replayed
    finally:
        replay.stop_all()


def test_a_shredded_keys_record_leaves_the_key_topics_log_within_the_compaction_bound(bus: Bus) -> None:
    """The bound of docs/privacy.md, with the bus's own topic configuration at a 2-second scale."""
    topic = f"techne.keys-bound-{uuid.uuid4().hex[:8]}"
    policy = TopicPolicy(keys_compaction_hours=2 / 3600, keys_tombstone_hours=2 / 3600)

    async def scenario() -> None:
        from aiokafka.admin import NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=bus.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=policy.configs(KEYS))])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bus.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"wrapped-key-of-the-person", key=b"subject/kid")
            await producer.send_and_wait(topic, None, key=b"subject/kid")  # the shredding tombstone
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:  # other keys keep arriving: segments roll
                await producer.send_and_wait(topic, b"another-key", key=f"other/{uuid.uuid4().hex}".encode())
                values = [m.value for m in await _records(bus.bootstrap, topic)]
                if b"wrapped-key-of-the-person" not in values:
                    return
                await asyncio.sleep(1.0)
            raise AssertionError("the shredded key's record is still in the log after 90 s")
        finally:
            await producer.stop()

    asyncio.run(scenario())
