"""Consent expiry on the real broker: a lapsed grant is erased like a withdrawal, audited
``consent_expired``, also when the worker was restarted in between (ledger restored from its
changelog). Time is advanced through the worker's clock, not waited for."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from core.settings import REPO_ROOT
from core.topics import AUDIT, bus_topics, ensure_topics, erasure_topic, raw_topic
from schemas import CATALOGUE
from schemas.models import CONSENT
from tests.conftest import Bus
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.integration
VENUE, PARTNER = "expiry-venue", "expiry-partner"
AGREEMENT = f"""id: dsa-expiry-test
provider_venues: [{VENUE}]
partner: {PARTNER}
purposes: [cross_venue_analytics]
event_types: [ticket.order_placed]
allowed_fields: [production, quantity]
retention_days: 730
valid_from: 2026-01-01
valid_until: 2028-12-31
legal_basis: consent
"""


def grant(email: str, at: datetime) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    return event_id, CATALOGUE.encode(CONSENT, {
        "event_id": event_id, "event_type": "consent.granted", "occurred_at": at, "received_at": at,
        "venue_id": VENUE, "source_system": "test", "subject": {"email": email}, "purpose": "cross_venue_analytics",
        "recipients": [PARTNER], "recipient_list_version": "2026-09", "proof_ref": None})


async def produce(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(raw_topic(VENUE), value, key=key)
    finally:
        await producer.stop()


def audit_lines(bus: Bus) -> list[dict[str, Any]]:
    lines = []
    for value in asyncio.run(read_all(bus.bootstrap, AUDIT)):
        lines.extend(json.loads(line) for line in value.split(b"\n") if line.strip())
    return lines


def wait_for(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError("timed out")


def test_lapsed_consent_is_erased_after_a_worker_restart(bus: Bus, tmp_path: Path) -> None:
    (tmp_path / "agreements").mkdir()
    (tmp_path / "agreements" / "expiry.yaml").write_text(AGREEMENT)
    (tmp_path / "venues.yaml").write_text(f"venues:\n  - id: {VENUE}\n    name: Expiry test\n    city: Nantes\n")
    asyncio.run(ensure_topics(bus.bootstrap, bus_topics([VENUE], [PARTNER]), bus.settings.partitions))
    clock = tmp_path / "clock"
    now = datetime.now(UTC)
    clock.write_text(now.isoformat())
    env = {**os.environ, **bus.env, "TECHNE_VENUES_FILE": str(tmp_path / "venues.yaml"),
           "TECHNE_AGREEMENTS_DIR": str(tmp_path / "agreements"), "TECHNE_DATA_DIR": str(tmp_path / "data"),
           "TECHNE_WORKER_ID": f"expiry-test-{uuid.uuid4().hex[:8]}", "TECHNE_CONSENT_EXPIRY_SCAN_S": "1"}

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / "worker.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "tests.integration.clocked_worker", str(clock)], env=env,
                                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    old_id, old = grant("lapsing@exemple.fr", now - timedelta(days=30))
    young_id, young = grant("fresh@exemple.fr", now - timedelta(days=2))
    worker = start()
    try:
        asyncio.run(produce(bus.bootstrap, [(b"subject-old-" + old_id.encode(), old),
                                            (b"subject-young-" + young_id.encode(), young)]))
        wait_for(lambda: {old_id, young_id} <= {line["event_id"] for line in audit_lines(bus)
                                                 if line["outcome"] == "consent_recorded"})
        time.sleep(3)  # a few scans at "now": nothing has lapsed
        assert not [line for line in audit_lines(bus) if line["outcome"] == "consent_expired"
                    and line["venue_id"] == VENUE]
    finally:
        stop(worker)

    clock.write_text((now + timedelta(days=380)).isoformat())  # the old grant is 410 days old, the young 382
    worker = start()
    try:
        expired = wait_for(lambda: [line for line in audit_lines(bus) if line["outcome"] == "consent_expired"
                                    and line["venue_id"] == VENUE])
        commands = wait_for(lambda: [CATALOGUE.decode(v)[1] for v in asyncio.run(read_all(bus.bootstrap,
                                                                                       erasure_topic(PARTNER)))])
        time.sleep(3)  # more scans: the same lapse is not erased twice
        assert len(expired) == 1 and expired[0]["auth"] == "consent-expiry:worker"
        erasure_lines = [line for line in audit_lines(bus) if line["outcome"] == "erasure_requested"
                         and line["event_id"] == expired[0]["event_id"]]
        assert {line["reason"] for line in erasure_lines} == {"consent_expired"}
        final = [CATALOGUE.decode(v)[1] for v in asyncio.run(read_all(bus.bootstrap, erasure_topic(PARTNER)))]
        assert len(final) == len(commands) == len(json.loads(bus.env["TECHNE_PSEUDONYM_KEYS"]))
        assert {(c["reason"], c["venue_id"], tuple(c["purposes"])) for c in final} == {
            ("consent_expired", VENUE, ("cross_venue_analytics",))}
        lapse = now - timedelta(days=30) + timedelta(days=395)  # the grant's time + 13 months
        assert abs(final[0]["occurred_at"] - lapse) < timedelta(seconds=1)
    finally:
        stop(worker)
