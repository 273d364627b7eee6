"""Each event exactly once in the partner table, on the real broker and chDB, whatever the crash.

A real ``techne sink`` process is SIGKILLed by a store wrapper the test injects
(:mod:`tests.support.faults`, ``TECHNE_TEST_FAULT``) before an insert, half-way through one (part of
the batch landed), and
after one but before its offsets were committed; a fresh process then resumes from the last
committed offsets. The store must hold ``count() == uniqExact(event_id) ==`` the number of
records produced. Then the store fails for a while under load: nothing lost, nothing
duplicated, and the outage shows in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from pathlib import Path

import pytest

from core.settings import Settings
from core.topics import AUDIT, ensure_topics, erasure_topic
from sinks.runner import partner_counts
from techne.local import LocalKafka, free_port
from tests.integration.sink_helpers import (
    committed_total,
    produce,
    shared_value,
    spawn_sink,
    stop,
    wait_caught_up,
    write_agreement,
)
from tests.support.metrics import metric

pytestmark = pytest.mark.integration

N = 3000


def setup(kafka: LocalKafka, tmp_path: Path, partner: str) -> tuple[dict[str, str], Settings]:
    write_agreement(tmp_path / "agreements", partner)
    env = {"TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(tmp_path),
           "TECHNE_AGREEMENTS_DIR": str(tmp_path / "agreements"),
           "TECHNE_SINK_BATCH_ROWS": "500", "TECHNE_SINK_BATCH_SECONDS": "0.2"}
    topics = [f"partner.{partner}.ticketing", erasure_topic(partner), AUDIT]
    asyncio.run(ensure_topics(kafka.bootstrap, topics, 3))
    settings = Settings.model_validate({"data_dir": tmp_path, "agreements_dir": tmp_path / "agreements",
                                        "bootstrap": kafka.bootstrap})
    return env, settings




@pytest.mark.parametrize("point", ["before_insert", "during_insert", "after_insert"])
def test_sigkill_at_each_point_then_restart_stores_each_event_once(
    kafka: LocalKafka, tmp_path: Path, point: str
) -> None:
    partner = f"eo-{point.replace('_', '-')}"
    topic = f"partner.{partner}.ticketing"
    env, settings = setup(kafka, tmp_path, partner)
    asyncio.run(produce(kafka.bootstrap, topic, [shared_value(i) for i in range(N)]))
    log = tmp_path / "sink.log"

    crashing = spawn_sink(partner, env, log, ("TECHNE_TEST_FAULT", f"{point}:2"))
    assert crashing.wait(120) == -9, log.read_text()[-3000:]
    (killed,) = re.findall(r"fault injection: SIGKILL (.*)", log.read_text())
    before = partner_counts(settings, partner)
    done = asyncio.run(committed_total(kafka.bootstrap, f"techne-sink.{partner}", topic))
    assert before["rows"] == before["distinct_event_ids"] and 0 < done < N  # the crash left work undone
    if point == "before_insert":
        assert before["rows"] == done  # nothing of the second write landed
    elif point == "during_insert":
        landed, size = map(int, re.fullmatch(r"during_insert: (\d+) of (\d+) rows inserted", killed).groups())
        assert before["rows"] == done + landed and 0 < landed < size  # part of the second write landed
    else:
        assert before["rows"] > done  # the second write landed, its offsets were not committed

    port = free_port()
    resumed = spawn_sink(partner, env, log, ("TECHNE_METRICS_PORT", str(port)))
    try:
        wait_caught_up(kafka.bootstrap, partner, resumed, log)
        duplicates = metric(port, "techne_sink_duplicates_skipped_total")
    finally:
        assert stop(resumed) == 0, log.read_text()[-3000:]
    after = partner_counts(settings, partner)
    assert after == {"rows": N, "distinct_event_ids": N}
    assert (duplicates > 0) == (point != "before_insert")  # redelivered rows were recognised, not re-inserted


def test_store_outage_under_load_loses_and_duplicates_nothing(kafka: LocalKafka, tmp_path: Path) -> None:
    partner = "eo-outage"
    env, settings = setup(kafka, tmp_path, partner)
    log, port = tmp_path / "sink.log", free_port()
    topic = f"partner.{partner}.ticketing"
    sink = spawn_sink(partner, env, log, ("TECHNE_TEST_FAULT", "store_down:2:4"), ("TECHNE_METRICS_PORT", str(port)))
    produced = 0
    paused_seen = False

    def load() -> None:
        nonlocal produced
        for wave in range(10):  # ~5 s of traffic, across the outage
            asyncio.run(produce(kafka.bootstrap, topic, [shared_value(wave * 1000 + i) for i in range(400)]))
            produced += 400
            time.sleep(0.5)

    producer = threading.Thread(target=load)
    producer.start()
    try:
        deadline = time.monotonic() + 60
        while producer.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # the metrics endpoint is not up yet
                paused_seen = paused_seen or metric(port, "techne_sink_paused") == 1
            time.sleep(0.2)
        producer.join()
        wait_caught_up(kafka.bootstrap, partner, sink, log)
        errors = metric(port, "techne_sink_insert_errors_total")
        retries = metric(port, "techne_sink_retries_total")
        paused_now = metric(port, "techne_sink_paused")
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]
    assert paused_seen and paused_now == 0
    assert errors >= 2 and retries >= 2
    assert partner_counts(settings, partner) == {"rows": produced, "distinct_event_ids": produced}
    assert "fault injection: store down" in log.read_text()
