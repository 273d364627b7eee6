"""``techne bench sink``: partner topic -> chDB through a real ``techne sink`` process, next to a
direct chDB bulk insert of the same rows measured in the same run.

Setup (not timed): a local Kafka broker in a temporary directory, an agreement for partner
``bench`` allowing every field, ``rows`` framed SharedTicketOrder records (live-like: event
times spread over the last hour, 5 venues, one pseudonym per 3 orders) spread evenly over the
3 partitions of ``partner.bench.ticketing``: with the default 240,000 rows every batch is full
(10,000 rows per partition), so the end of the run does not wait for a batch's age.

* **Baseline** — the same records inserted into the same table (same DDL) of a fresh chDB
  store by one ``INSERT`` in this process, in the faster of two formats: ``Avro`` (the bodies
  as they are on the topic) or ``JSONEachRow`` (rows decoded beforehand, not timed).
* **Sink** — ``python -m techne.cli sink --partner bench`` started after the records are on the
  topic; throughput is measured from its first committed batch to the moment every offset is
  committed (start-up and group join are reported apart); its peak RSS is read from
  ``/proc/<pid>/status`` (``VmHWM``) before it is stopped. The store is then checked:
  ``count() == uniqExact(event_id) == rows``.

Both sides also report the CPU time they used per row (all threads: the baseline's from
``getrusage`` around its insert, the sink's from ``/proc/<pid>/stat`` over the same window as its
throughput); ``cpu_ratio_vs_chdb_bulk_insert`` = baseline CPU per row / sink CPU per row. On a
shared machine the rows/s of both sides move with the load of other processes; the CPU
figures much less (the sink's also counts the Kafka client; the broker's own work is not
counted on either side).

Prints a table, then with ``--json`` one JSON object on the last line, with
``ratio_vs_chdb_bulk_insert`` = sink rows/s / baseline rows/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer

from bench.procstat import cpu_seconds, peak_rss_mib
from core.settings import REPO_ROOT, Settings
from core.topics import AUDIT, ensure_topics, erasure_topic
from schemas.codec import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from schemas.sharing import PROJECTABLE
from sinks.chdb import ChdbStore
from sinks.ddl import to_json_each_row
from sinks.framing import SharedFormat
from sinks.migrate import ensure_partner
from sinks.records import decode_row
from sinks.runner import partner_counts, tables_for
from sinks.tables import RETAIN_UNTIL
from techne.local import LocalKafka, free_port

PARTNER = "bench"
TOPIC = f"partner.{PARTNER}.ticketing"
GROUP = f"techne-sink.{PARTNER}"
PARTITIONS = 3


def records(n: int) -> list[bytes]:
    now = datetime.now(UTC)
    venues = ["opera-lyon", "chaillot", "mixt", "gemeaux", "lieu-unique"]
    out = []
    for i in range(n):
        at = now - timedelta(seconds=3600 * (n - i) / n)
        out.append(CATALOGUE.encode(SHARED_TICKET_ORDER, {
            "event_id": str(uuid.uuid4()), "event_type": "ticket.order_placed", "occurred_at": at,
            "received_at": at + timedelta(milliseconds=300), "venue_id": venues[i % 5], "agreement_id": "dsa-bench",
            "purpose": "cross_venue_analytics", "subject_pseudonym": f"{i // 3:064x}", "pseudonym_key_version": 1,
            "departement": f"{(i * 7919) % 95 + 1:02d}", "age_band": "25-34", "production": f"Production {i % 40}",
            "performance_id": f"P-{i % 400}", "performance_at": at + timedelta(days=20), "discipline": "opera",
            "tariff": "plein", "channel": "web", "quantity": 1 + i % 4, "amount_minor": 2500 + i % 9000,
            "currency": "EUR",
        }))
    return out


async def produce(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
                                max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = [await producer.send(TOPIC, v, partition=i % PARTITIONS) for i, v in enumerate(values)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(settings: Settings, values: list[bytes]) -> dict[str, float]:
    """Rows/s (and CPU µs per row) of one bulk INSERT of ``values`` into a fresh copy of the
    partner table, per format."""
    tables = tables_for(settings, PARTNER)
    shared = SharedFormat()
    rows = [shared.parse(v) for v in values]
    columns = [c for c in tables.orders.names if c != RETAIN_UNTIL]
    avro = shared.container(rows[0].schema_id, rows)
    json_body = to_json_each_row([{k: v for k, v in decode_row(v).items() if k in columns} for v in values])
    out: dict[str, float] = {}
    with ChdbStore(settings.data_dir / "baseline") as store:
        for fmt, data in (("Avro", avro), ("JSONEachRow", json_body)):
            for spec in tables.all:
                store.command(f"DROP TABLE IF EXISTS {spec.qualified} SYNC")
            ensure_partner(store, tables)
            started, cpu = time.perf_counter(), _cpu_s()
            store.insert(tables.orders.qualified, columns, data, fmt, f"baseline-{fmt}")
            out[fmt] = len(values) / (time.perf_counter() - started)
            out[f"{fmt}_cpu_us"] = 1e6 * (_cpu_s() - cpu) / len(values)
    return out


async def committed(bootstrap: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(GROUP)
        return sum(m.offset for tp, m in offsets.items() if tp.topic == TOPIC and m.offset > 0)
    except Exception:  # the group does not exist yet
        return 0
    finally:
        await admin.close()


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("techne_sink_") and "{" in line:
            name = line.split("{", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def run_sink(settings: Settings, env: dict[str, str], n: int, bootstrap: str) -> dict[str, Any]:
    port = free_port()
    log = settings.data_dir / "sink.log"
    full = {**os.environ, **env, "TECHNE_METRICS_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "techne.cli", "sink", "--partner", PARTNER], cwd=REPO_ROOT,
                                env=full, stdout=out, stderr=subprocess.STDOUT)
    try:
        first: tuple[float, int, float] | None = None
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sink exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            done = asyncio.run(committed(bootstrap))
            now, cpu = time.perf_counter(), cpu_seconds(proc.pid)
            if done and first is None:
                first = (now, done, cpu)
            if done >= n:
                break
            time.sleep(0.02)
        assert first is not None
        metrics = scrape(port)
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    measured = n - first[1]
    return {
        "rows_per_s": measured / (now - first[0]) if measured else float("nan"),
        "cpu_us_per_row": 1e6 * (cpu - first[2]) / measured if measured else float("nan"),
        "startup_s": first[0] - started,
        "peak_rss_mb": rss,
        "batches": metrics.get("techne_sink_batches_total", 0.0),
        "mean_batch_rows": metrics.get("techne_sink_batch_messages_sum", 0.0)
        / max(1.0, metrics.get("techne_sink_batch_messages_count", 0.0)),
        "mean_insert_ms": 1000 * metrics.get("techne_sink_insert_seconds_sum", 0.0)
        / max(1.0, metrics.get("techne_sink_insert_seconds_count", 0.0)),
    }


def main(rows: int = 240_000, as_json: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="techne-bench-sink-") as tmp:
        root = Path(tmp)
        agreements = root / "agreements"
        agreements.mkdir()
        (agreements / "bench.yaml").write_text(yaml.safe_dump({
            "id": "dsa-bench", "provider_venues": ["opera-lyon"], "partner": PARTNER,
            "purposes": ["cross_venue_analytics"], "event_types": ["ticket.order_placed"],
            "allowed_fields": sorted(PROJECTABLE), "retention_days": 730,
            "valid_from": "2026-01-01", "valid_until": "2030-12-31"}))
        broker = LocalKafka(root / "kafka", partitions=3)
        bootstrap = broker.start()
        try:
            settings = Settings.model_validate({"data_dir": root, "agreements_dir": agreements,
                                                "bootstrap": bootstrap})
            asyncio.run(ensure_topics(bootstrap, [TOPIC, erasure_topic(PARTNER), AUDIT], 3))
            values = records(rows)
            asyncio.run(produce(bootstrap, values))
            base = baseline(settings, values)
            env = {"TECHNE_BOOTSTRAP": bootstrap, "TECHNE_DATA_DIR": str(root),
                   "TECHNE_AGREEMENTS_DIR": str(agreements)}
            sink = run_sink(settings, env, rows, bootstrap)
            counts = partner_counts(settings, PARTNER)
        finally:
            broker.stop()
    best = max(base["Avro"], base["JSONEachRow"])
    best_cpu = min(base["Avro_cpu_us"], base["JSONEachRow_cpu_us"])
    result = {
        "rows": rows,
        "sink_rows_per_s": round(sink["rows_per_s"]),
        "chdb_bulk_insert_rows_per_s": round(best),
        "chdb_bulk_insert_avro_rows_per_s": round(base["Avro"]),
        "chdb_bulk_insert_json_rows_per_s": round(base["JSONEachRow"]),
        "ratio_vs_chdb_bulk_insert": round(sink["rows_per_s"] / best, 3),
        "sink_cpu_us_per_row": round(sink["cpu_us_per_row"], 2),
        "chdb_bulk_insert_cpu_us_per_row": round(best_cpu, 2),
        "cpu_ratio_vs_chdb_bulk_insert": round(best_cpu / sink["cpu_us_per_row"], 3),
        "sink_peak_rss_mb": round(sink["peak_rss_mb"], 1),
        "sink_startup_s": round(sink["startup_s"], 2),
        "sink_batches": int(sink["batches"]),
        "sink_mean_batch_rows": round(sink["mean_batch_rows"]),
        "sink_mean_insert_ms": round(sink["mean_insert_ms"], 1),
        "stored_rows": counts["rows"],
        "stored_distinct_event_ids": counts["distinct_event_ids"],
        "exactly_once": counts["rows"] == counts["distinct_event_ids"] == rows,
    }
    print(f"{'figure':<36}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<36}{value!s:>14}")
    if as_json:
        print(json.dumps(result))
    return result
