"""The benchmark commands run end to end on a small load and account for every input.

Figures are not asserted (they depend on the machine); what is asserted is that each command
completes on a fresh broker, prints its one JSON line, and that the measured system did all
the work (every event decided, every row stored once, every sink caught up), so a benchmark
that silently measured a broken pipeline fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from core.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def bench(*args: str, timeout: float = 300) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "techne.cli", "bench", *args, "--json"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_bench_streams_worker_decides_every_event() -> None:
    r = bench("streams", "--events", "2000")
    assert r["techne_worker"]["audit_records"] == r["events"] == 2000
    assert r["faust_forwarder"]["received"] == 2000
    assert all(r[k] > 0 for k in ("ratio_vs_faust_forwarder", "ratio_vs_aiokafka_passthrough"))


def test_bench_sink_stores_every_row_once() -> None:
    r = bench("sink", "--rows", "20000")
    assert r["stored_rows"] == r["stored_distinct_event_ids"] == r["rows"] == 20000
    assert r["ratio_vs_chdb_bulk_insert"] > 0 and r["sink_peak_rss_mb"] > 0


def test_bench_e2e_every_request_accepted_and_every_sink_caught_up() -> None:
    r = bench("e2e", "--events", "1000", "--rate", "200", "--seconds", "2")
    assert r["statuses"] == {"202": 10}
    assert r["sink_lag_after"] and set(r["sink_lag_after"].values()) == {0}
    assert r["latency_p99_s_le"] is not None and r["latency_p50_s_le"] <= r["latency_p99_s_le"]
    assert {"gateway", "worker", "broker"} <= set(r["cpu_us_per_event"])
    # the broker's own counts over the orders' window: every order once on the raw topic, and the
    # worker's audit record per order (the consents done before the clock); the JMX agent comes with
    # Maven like the broker's jars (test_compose_kafka needs it too)
    assert not r["broker_requests_note"], r["broker_requests_note"]
    assert r["broker_messages_in_per_event"]["raw.chaillot"] == 1.0
    assert 1.0 <= r["broker_messages_in_per_event"]["techne.audit"] < 1.01  # not idempotent: a rare retry
    assert r["broker_requests_per_event"]["Produce"] > 0 and r["broker_requests_per_event"]["total"] > 0


def test_bench_ingest_completes_with_both_sides_measured() -> None:
    r = bench("ingest", "--events", "1000", "--singles", "200", "--concurrency", "8")
    assert r["events"] == 1000 and r["single_requests"] == 200
    assert r["gateway_batch_events_per_s"] > 0 and r["aiokafka_producer_events_per_s"] > 0
    assert r["gateway_single_requests_per_s"] > 0 and r["gateway_peak_rss_mib"] > 0
    assert r["broker_produce_requests_per_single_request"] > 0 and r["broker_cpu_us_per_single_request"] > 0
