"""Erasure commands and the audit sink, on the real broker and chDB, through real processes.

ErasureCommand records are produced to ``partner.<id>.erasure`` by the test (the worker emits
them in production). The partner's ``techne sink`` deletes the subject's rows, withholds a late
event of the erased period, ignores a re-sent command, records completion on ``techne.audit``;
a SIGKILL between the delete and the commit re-executes the command once. ``techne sink
--audit`` then stores every audit message exactly once.
"""

# ruff: noqa: S608  (test SQL interpolates module constants only)
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import Settings
from core.topics import AUDIT, ensure_topics, erasure_topic
from sinks.consumer import AUDIT_GROUP
from sinks.runner import audit_rows, partner_rows
from techne.accounting import audit_lines
from techne.local import LocalKafka, free_port
from tests.integration.kafka_helpers import read_all
from tests.integration.sink_helpers import (
    committed_total,
    erasure_value,
    produce,
    shared_value,
    spawn_sink,
    stop,
    wait_caught_up,
    write_agreement,
)
from tests.support.metrics import metric

pytestmark = pytest.mark.integration

SUBJECT = "5" * 64


def setup(kafka: LocalKafka, tmp_path: Path, partner: str) -> tuple[dict[str, str], Settings]:
    write_agreement(tmp_path / "agreements", partner)
    env = {"TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(tmp_path),
           "TECHNE_AGREEMENTS_DIR": str(tmp_path / "agreements"), "TECHNE_SINK_BATCH_SECONDS": "0.2"}
    topics = [f"partner.{partner}.ticketing", erasure_topic(partner), AUDIT]
    asyncio.run(ensure_topics(kafka.bootstrap, topics, 3))
    return env, Settings.model_validate({"data_dir": tmp_path, "agreements_dir": tmp_path / "agreements"})


def erased_records(bootstrap: str, command_id: str) -> list[dict[str, object]]:
    records = [line for v in asyncio.run(read_all(bootstrap, AUDIT)) for line in audit_lines(v)]
    return [r for r in records if r.get("event_id") == command_id]


def rows_of(settings: Settings, partner: str, subject: str) -> int:
    sql = f"SELECT count() FROM ticket_orders WHERE subject_pseudonym = '{subject}'"
    ((n,),) = partner_rows(settings, partner, sql)
    return int(n)


def test_erasure_deletes_guards_late_events_is_idempotent_and_audited(kafka: LocalKafka, tmp_path: Path) -> None:
    partner = "er-main"
    env, settings = setup(kafka, tmp_path, partner)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    topic = f"partner.{partner}.ticketing"
    before = [shared_value(i, subject=SUBJECT, at=t0 - timedelta(minutes=i + 1)) for i in range(5)]
    after = [shared_value(10 + i, subject=SUBJECT, at=t0 + timedelta(minutes=i + 1)) for i in range(2)]
    marketing = [shared_value(20, subject=SUBJECT, at=t0 - timedelta(minutes=3), purpose="marketing")]
    others = [shared_value(100 + i, at=t0 - timedelta(minutes=2)) for i in range(50)]
    asyncio.run(produce(kafka.bootstrap, topic, before + after + marketing + others))
    log, port = tmp_path / "sink.log", free_port()
    sink = spawn_sink(partner, env, log, ("TECHNE_METRICS_PORT", str(port)))
    command_id = str(uuid.uuid4())
    command = erasure_value(partner, SUBJECT, purposes=["cross_venue_analytics"], occurred_at=t0,
                            command_id=command_id)
    try:
        wait_caught_up(kafka.bootstrap, partner, sink, log)
        asyncio.run(produce(kafka.bootstrap, erasure_topic(partner), [command], [SUBJECT.encode()]))
        wait_caught_up(kafka.bootstrap, partner, sink, log)
        # the topics are not ordered with each other: an event of the erased period arriving now
        late = shared_value(30, subject=SUBJECT, at=t0 - timedelta(minutes=30))
        asyncio.run(produce(kafka.bootstrap, topic, [late]))
        asyncio.run(produce(kafka.bootstrap, erasure_topic(partner), [command], [SUBJECT.encode()]))  # re-sent
        wait_caught_up(kafka.bootstrap, partner, sink, log)
        erased = metric(port, "techne_sink_erasures_total", partner=partner, outcome="erased")
        again = metric(port, "techne_sink_erasures_total", partner=partner, outcome="already_done")
        latency_count = metric(port, "techne_sink_erasure_seconds_count", partner=partner)
        withheld = metric(port, "techne_sink_suppressed_total", partner=partner, reason="erased")
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]
    assert (erased, again, latency_count, withheld) == (1, 1, 1, 1)
    assert rows_of(settings, partner, SUBJECT) == 3  # the two later events and the other purpose's
    ((total,),) = partner_rows(settings, partner, "SELECT count() FROM ticket_orders")
    assert total == 53
    (record,) = erased_records(kafka.bootstrap, command_id)
    assert record["outcome"] == "erased" and record["partner"] == partner and record["rows_deleted"] == 5
    assert isinstance(record["issued_at"], str) and isinstance(record["decided_at"], str)
    assert partner_rows(settings, partner, "SELECT toString(command_id), rows_deleted FROM erasures") == [
        (command_id, 5)]


def test_a_crash_between_delete_and_commit_re_executes_the_command_once(kafka: LocalKafka, tmp_path: Path) -> None:
    partner = "er-crash"
    env, settings = setup(kafka, tmp_path, partner)
    t0 = datetime.now(UTC)
    asyncio.run(produce(kafka.bootstrap, f"partner.{partner}.ticketing",
                        [shared_value(i, subject=SUBJECT, at=t0 - timedelta(minutes=i + 1)) for i in range(4)]))
    log = tmp_path / "sink.log"
    sink = spawn_sink(partner, env, log, ("TECHNE_TEST_FAULT", "after_erase:1"))
    try:
        wait_caught_up(kafka.bootstrap, partner, sink, log)
        command_id = str(uuid.uuid4())
        command = erasure_value(partner, SUBJECT, occurred_at=t0, command_id=command_id)
        asyncio.run(produce(kafka.bootstrap, erasure_topic(partner), [command], [SUBJECT.encode()]))
        assert sink.wait(60) == -9
    finally:
        stop(sink)
    assert rows_of(settings, partner, SUBJECT) == 0  # deleted, but not yet recorded nor committed
    assert erased_records(kafka.bootstrap, command_id) == []
    resumed = spawn_sink(partner, env, log)
    try:
        wait_caught_up(kafka.bootstrap, partner, resumed, log)
    finally:
        assert stop(resumed) == 0
    (record,) = erased_records(kafka.bootstrap, command_id)
    assert record["rows_deleted"] == 0  # the re-execution found nothing left to delete
    assert partner_rows(settings, partner, "SELECT count() FROM erasures") == [(1,)]


def test_audit_sink_stores_each_audit_message_once(kafka: LocalKafka, tmp_path: Path) -> None:
    env = {"TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(tmp_path), "TECHNE_SINK_BATCH_SECONDS": "0.2"}
    asyncio.run(ensure_topics(kafka.bootstrap, [AUDIT], 3))
    decision = {"event_id": str(uuid.uuid4()), "venue_id": "chaillot", "event_type": "ticket.order_placed",
                "outcome": "shared", "reason": "granted", "agreement_id": "dsa", "partner": "observatoire",
                "purpose": "cross_venue_analytics", "decided_at": datetime.now(UTC).isoformat()}
    # (no garbage here: techne.audit is shared by the session's tests; invalid records: unit tests)
    # the group's offsets outlive earlier audit sinks of the session: this store gets what follows them
    before = asyncio.run(committed_total(kafka.bootstrap, AUDIT_GROUP, AUDIT))
    asyncio.run(produce(kafka.bootstrap, AUDIT, [json.dumps(decision).encode()]))
    log = tmp_path / "audit.log"
    sink = spawn_sink("--audit", env, log)
    try:
        wait_caught_up(kafka.bootstrap, "--audit", sink, log)
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]
    # restart with more messages: what was stored is not stored again. The worker's records
    # hold one line per decision (NDJSON): each line is a row.
    two = b"\n".join(json.dumps({**decision, "outcome": o, "partner": p}).encode()
                     for o, p in (("dropped", "observatoire"), ("shared", "reseau-danse")))
    asyncio.run(produce(kafka.bootstrap, AUDIT, [two]))
    sink = spawn_sink("--audit", env, log)
    try:
        wait_caught_up(kafka.bootstrap, "--audit", sink, log)
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]
    settings = Settings.model_validate({"data_dir": tmp_path})
    total = asyncio.run(committed_total(kafka.bootstrap, AUDIT_GROUP, AUDIT)) - before
    sql = ("SELECT count(), uniqExact(kafka_partition, kafka_offset, kafka_line), "
           "uniqExact(kafka_partition, kafka_offset) FROM decisions")
    ((rows, lines, positions),) = audit_rows(settings, sql)
    assert rows == lines and positions == total  # every message once, every line of it once
    assert audit_rows(settings, "SELECT outcome, partner, kafka_line FROM decisions "
                                f"WHERE event_id = '{decision['event_id']}' ORDER BY ALL") == [
        ("dropped", "observatoire", 0), ("shared", "observatoire", 0), ("shared", "reseau-danse", 1)]

