"""Poison on a partner topic, on the real broker and chDB, through a real ``techne sink`` process.

Undecodable records (garbage bytes, a tombstone, a malformed event id, an event time out of
range) and a record the engine refuses at insert time sit between valid records of
``partner.<id>.ticketing``. The sink must dead-letter each one to ``dlq.sink`` (original bytes,
reason headers, source topic/partition/offset), store every valid record exactly once, and
commit past everything; ``techne dlq show --stage sink`` lists the letters and ``replay`` puts
one back on the partner topic (dead-lettered again: it is still poison).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import Settings
from core.topics import AUDIT, ensure_topics, erasure_topic
from sinks.runner import partner_counts
from streams import dlq
from techne.local import LocalKafka
from tests.integration.kafka_helpers import end_offsets
from tests.integration.sink_helpers import (
    REPO,
    committed_total,
    produce,
    shared_value,
    spawn_sink,
    stop,
    wait_caught_up,
    write_agreement,
)

pytestmark = pytest.mark.integration

PARTNER = "dlq-sink"
TOPIC = f"partner.{PARTNER}.ticketing"


def poison(marker: bytes) -> list[tuple[bytes | None, bytes, str]]:
    """(value, key, expected reason) of each poison record."""
    good = shared_value(7)
    bad_uuid = shared_value(8, event_id=str(uuid.uuid4())).replace(b"-", b"_", 1)
    return [
        (b"not avro at all " + marker, b"p-garbage-" + marker, "bad_magic"),
        (None, b"p-tombstone-" + marker, "tombstone"),
        (bad_uuid, b"p-uuid-" + marker, "bad_uuid"),
        (shared_value(9, occurred_at=datetime(2350, 1, 1, tzinfo=UTC)), b"p-future-" + marker,
         "timestamp_out_of_range"),
        (good[: len(good) - 10], b"p-cut-" + marker, "corrupt_body"),  # leading fields intact: the engine refuses it
    ]


def test_poison_goes_to_dlq_sink_and_the_good_records_are_stored_once(kafka: LocalKafka, tmp_path: Path) -> None:
    write_agreement(tmp_path / "agreements", PARTNER)
    env = {"TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(tmp_path),
           "TECHNE_AGREEMENTS_DIR": str(tmp_path / "agreements"),
           "TECHNE_SINK_BATCH_ROWS": "200", "TECHNE_SINK_BATCH_SECONDS": "0.2"}
    asyncio.run(ensure_topics(kafka.bootstrap, [TOPIC, erasure_topic(PARTNER), AUDIT], 3))  # not dlq.sink
    settings = Settings.model_validate({"data_dir": tmp_path, "agreements_dir": tmp_path / "agreements",
                                        "bootstrap": kafka.bootstrap})
    marker = uuid.uuid4().hex.encode()
    bad = poison(marker)
    good = [shared_value(i) for i in range(600)]
    # the poison records are produced between valid ones (spread over the partitions by key)
    values: list[bytes | None] = [*good[:300]]
    keys = [str(i).encode() for i in range(300)]
    for value, key, _ in bad:
        values.append(value)
        keys.append(key)
    values += good[300:]
    keys += [str(i).encode() for i in range(300, 600)]
    asyncio.run(produce(kafka.bootstrap, TOPIC, values, keys))  # type: ignore[arg-type]

    log = tmp_path / "sink.log"
    sink = spawn_sink(PARTNER, env, log)
    try:
        wait_caught_up(kafka.bootstrap, PARTNER, sink, log)
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]

    assert asyncio.run(committed_total(kafka.bootstrap, f"techne-sink.{PARTNER}", TOPIC)) == len(values)
    assert partner_counts(settings, PARTNER) == {"rows": len(good), "distinct_event_ids": len(good)}

    letters = [d for d in asyncio.run(dlq.read(kafka.bootstrap, "sink")) if d.source_topic == TOPIC]
    by_key = {d.key: d for d in letters}
    assert len(letters) == len(bad), [d.describe() for d in letters]
    for value, key, reason in bad:
        letter = by_key.get(key)  # the original key, also for the record refused at insert time
        assert letter is not None, (reason, [d.describe() for d in letters])
        assert letter.headers["techne-stage"] == "sink"
        assert letter.headers["techne-reason"] == reason
        assert letter.headers["techne-detail"]
        assert letter.headers["techne-failed-at"].startswith(str(datetime.now(UTC).year))
        assert letter.value == (value or b"")  # the original bytes (a tombstone stays empty)
        partition, offset = int(letter.headers["techne-source-partition"]), int(letter.headers["techne-source-offset"])
        assert offset > 0 and 0 <= partition < 3  # valid records came before it on its partition

    shown = subprocess.run([sys.executable, "-m", "techne.cli", "dlq", "show", "--stage", "sink", "--limit", "1000"],
                           cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=True)
    mine = [line for line in shown.stdout.splitlines() if f"from {TOPIC} " in line]
    assert sorted(line.split(": ", 1)[1].split(" — ")[0] for line in mine) == sorted(r for _, _, r in bad)

    # replay one reason into the partner topic: still poison, so the sink dead-letters it again
    assert asyncio.run(dlq.replay(kafka.bootstrap, "sink", reason="bad_magic")) >= 1
    assert asyncio.run(end_offsets(kafka.bootstrap, [TOPIC]))[TOPIC] == len(values) + 1
    sink = spawn_sink(PARTNER, env, log)
    try:
        wait_caught_up(kafka.bootstrap, PARTNER, sink, log)
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]
    again = [d for d in asyncio.run(dlq.read(kafka.bootstrap, "sink"))
             if d.source_topic == TOPIC and d.headers["techne-reason"] == "bad_magic"]
    assert [d.value for d in again] == [bad[0][0]] * 2 and again[1].key == bad[0][1]
    assert partner_counts(settings, PARTNER) == {"rows": len(good), "distinct_event_ids": len(good)}


def test_a_flood_of_poison_stops_the_sink_with_a_clear_error_and_nothing_committed(kafka: LocalKafka,
                                                                                   tmp_path: Path) -> None:
    """A partner topic full of records the sink cannot read (say, a worker deployed with a schema
    the sink does not know): the sink stops instead of emptying it into dlq.sink."""
    partner, topic = "flood-sink", "partner.flood-sink.ticketing"
    write_agreement(tmp_path / "agreements", partner)
    env = {"TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(tmp_path),
           "TECHNE_AGREEMENTS_DIR": str(tmp_path / "agreements"), "TECHNE_SINK_BATCH_SECONDS": "0.2",
           "TECHNE_POISON_WINDOW": "50", "TECHNE_POISON_THRESHOLD": "0.5"}
    asyncio.run(ensure_topics(kafka.bootstrap, [topic, erasure_topic(partner), AUDIT], 1))
    flood = [b"not avro " + str(i).encode() for i in range(500)]
    asyncio.run(produce(kafka.bootstrap, topic, flood, [str(i).encode() for i in range(500)]))
    log = tmp_path / "sink.log"
    sink = spawn_sink(partner, env, log)
    try:
        code = sink.wait(90)
    finally:
        stop(sink)
    text = log.read_text()
    assert code == 2, text[-3000:]
    assert "of the last 50 messages were invalid" in text and "techne dlq show" in text
    assert asyncio.run(committed_total(kafka.bootstrap, f"techne-sink.{partner}", topic)) == 0
    letters = [d for d in asyncio.run(dlq.read(kafka.bootstrap, "sink")) if d.source_topic == topic]
    assert 0 < len(letters) < 50, "it stopped within the first window (once full), not after 500 letters"
