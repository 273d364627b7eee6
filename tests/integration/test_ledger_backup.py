"""`techne backup ledger` / `restore-ledger`: the consent ledger's changelog topic, on the session's
broker, comes back record for record (partition, order, key, value, tombstones, headers, time)
into the ledger topic of another deployment; a non-empty ledger is never written over."""

from __future__ import annotations

import asyncio
import json
import secrets
import stat
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from core.kafka_auth import KafkaAuth
from core.settings import Settings
from streams.app import create_app
from techne.cli import app
from techne.ledger_backup import ledger_topic, read_topic
from tests.conftest import Bus

pytestmark = pytest.mark.integration


def test_ledger_topic_is_the_workers_changelog() -> None:
    settings = Settings(pseudonym_keys={1: "k" * 16}, datakey_master_keys={1: "m" * 16}, worker_id="techne-worker-x")
    worker = create_app(settings)
    assert worker.tables["consent-ledger"].changelog_topic.get_topic_name() == ledger_topic(settings)


async def _fill(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(60):
            key = f"subject-{n % 20}".encode()  # every key written 3 times: the ledger's history
            value = None if n % 13 == 0 else json.dumps({"purposes": {"marketing": n}, "é": "ü"}).encode()
            headers = [("v", b"1")] if n % 2 else None
            await producer.send_and_wait(topic, value, key=key, partition=n % 3, timestamp_ms=1_760_000_000_000 + n,
                                         headers=headers)
    finally:
        await producer.stop()


def test_ledger_backup_restores_every_record_into_a_new_ledger(bus: Bus, tmp_path: Path) -> None:
    source_id, target_id = f"ledger-a-{secrets.token_hex(4)}", f"ledger-b-{secrets.token_hex(4)}"
    source_topic = f"{source_id}-consent-ledger-changelog"
    asyncio.run(_fill(bus.bootstrap, source_topic))
    runner = CliRunner()
    out = tmp_path / "ledger.jsonl.gz"
    env = {"TECHNE_BOOTSTRAP": bus.bootstrap, "TECHNE_WORKER_ID": source_id}
    saved = runner.invoke(app, ["backup", "ledger", str(out)], env=env)
    assert saved.exit_code == 0, saved.output
    assert "60 records over 3 partitions" in saved.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # identifiers of standing grants, in clear

    refused = runner.invoke(app, ["backup", "restore-ledger", str(out)], env=env)  # its own, non-empty ledger
    assert refused.exit_code == 1 and "already holds 60 records" in refused.output

    restored = runner.invoke(app, ["backup", "restore-ledger", str(out)],
                             env={**env, "TECHNE_WORKER_ID": target_id})
    assert restored.exit_code == 0, restored.output
    auth = KafkaAuth()
    before = asyncio.run(read_topic(bus.bootstrap, auth, source_topic))
    after = asyncio.run(read_topic(bus.bootstrap, auth, f"{target_id}-consent-ledger-changelog"))
    assert after[0] == before[0] == 3
    for partition in range(3):  # same records, same order, each in its partition (co-partitioning)
        assert [r for r in after[1] if r["p"] == partition] == [r for r in before[1] if r["p"] == partition]
    assert sum(1 for r in after[1] if r["v"] is None) == 5 and any(r["h"] for r in after[1])
