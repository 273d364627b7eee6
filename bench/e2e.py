"""``techne bench e2e``: signed batches through the gateway to the partner tables, on a real broker.

1. **Throughput**: every person of the load consents first (naming both partners of the venue;
   the worker has processed every consent before the clock starts), then ``events`` orders go
   out as signed 100-event batches; sustained events/s = orders / time from the first batch
   until the worker has consumed everything and every partner sink has committed (so every row
   is in its store).
2. **Latency at ``rate`` events/s**: paced batches for ``seconds``; the sinks' end-to-end
   histogram (``received_at`` at the gateway -> insert in the partner store) gives p50/p99, read
   as bucket upper bounds from the sinks' ``/metrics`` before and after the phase.
3. **Baseline** in the same run: a bare aiokafka producer -> consumer of the same pre-encoded
   records. Peak RSS (VmHWM) of every process is reported, and the CPU time (user + system)
   each process (broker included) spent per event during the sustained phase, which shows
   where the 2 cores go, and their sum over every process (``cpu_us_per_event_total``), the
   figure issue 19 tracks. Sinks' resident memory at the end is split into private (anon) and
   shared library pages (file: chDB's library, shared by every sink on the machine).
4. **Broker requests per event** over the same sustained window, the broker's own counts (the
   JMX exporter agent in the local broker, :mod:`bench.broker_requests`): requests per API
   (Produce, Fetch, total), messages in per topic (records per event) and produce/fetch partition
   entries per topic (who sends what: raw topics are the gateway's, partner, venue and audit
   topics the worker's; records per appended batch). Without the agent (no Maven) the bench says
   so and prints the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import broker_requests
from bench.ingest import _fire, _orders, _signed
from bench.procstat import cpu_seconds, peak_rss_mib, rss_mib
from core.settings import DEFAULT_AGREEMENTS, DEFAULT_VENUES
from core.topics import SHARED_STREAMS, bus_topics, ensure_topics, partitions_of, partner_topic, raw_topic
from core.venues import load_venues
from producers.ingest import prepare, use_keyring
from schemas.agreements import load_agreements, partners
from techne.accounting import wait_sinks_caught_up
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets

TUNABLES = ("TECHNE_PRODUCER_LINGER_MS", "TECHNE_WORKER_COMMIT_INTERVAL_S")  # echoed: what an A/B run set
VENUE = "chaillot"
BATCH = 100


async def _baseline(bootstrap: str, records: list[tuple[bytes, bytes]]) -> float:
    topic = "bench.e2e.baseline"
    await ensure_topics(bootstrap, [topic], 3)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="bench-e2e-baseline",
                                auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=5000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=v, key=k) for k, v in records]
        got = 0
        while got < len(records):
            got += sum(len(b) for b in (await consumer.getmany(timeout_ms=200)).values())
        await asyncio.gather(*futures)
        await consumer.commit()
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


def _histogram(ports: list[int]) -> dict[float, float]:
    """Cumulative bucket counts of the e2e latency histogram, summed over the sinks."""
    out: dict[float, float] = {}
    for port in ports:
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
            if line.startswith("techne_sink_e2e_latency_seconds_bucket{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                bound = float("inf") if le == "+Inf" else float(le)
                out[bound] = out.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    delta = sorted((b, after.get(b, 0.0) - before.get(b, 0.0)) for b in after)
    total = delta[-1][1] if delta else 0.0
    if total <= 0:
        return None
    for bound, count in delta:
        if count >= q * total:
            return bound
    return None


def _consents(orders: list[dict[str, Any]], partners_of: dict[str, list[str]]) -> list[dict[str, Any]]:
    emails = sorted({o["customer"]["email"] for o in orders})
    return [{"type": "consent.granted", "occurred_at": "2026-09-01T10:00:00+00:00", "customer": {"email": e},
             "purpose": purpose, "recipients": names} for e in emails for purpose, names in partners_of.items()]


async def _wait_drained(bootstrap: str, groups: dict[str, list[str]], timeout: float,
                        poll: float = 0.2) -> dict[str, int]:
    """Poll until every consumer group in ``groups`` (group -> topics) has committed up to the end
    of its topics, or ``timeout``; the last lag of each group. One admin client and one consumer
    for the whole wait: a fresh pair per poll (``techne.accounting``) costs the broker a
    connection and a full metadata request each time, which showed up as broker CPU per event."""
    topics = sorted({t for ts in groups.values() for t in ts})
    parts = await partitions_of(bootstrap, topics)
    tps = {g: [TopicPartition(t, p) for t in ts for p in parts.get(t, [])] for g, ts in groups.items()}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            ends = await consumer.end_offsets([tp for g in tps.values() for tp in g])
            lags: dict[str, int] = {}
            for group, parts_of_group in tps.items():
                committed = await admin.list_consumer_group_offsets(group, partitions=parts_of_group)
                lags[group] = sum(max(0, ends[tp] - max(0, committed[tp].offset if tp in committed else 0))
                                  for tp in parts_of_group)
            if not any(lags.values()) or time.monotonic() > deadline:
                return lags
            await asyncio.sleep(poll)
    finally:
        await consumer.stop()
        await admin.close()


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each process still running (:func:`bench.procstat.cpu_seconds`)."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            out[name] = cpu_seconds(pid)
        except OSError:
            continue
    return out


def run(events: int = 20_000, rate: int = 1_000, seconds: int = 10) -> dict[str, Any]:
    venues = sorted(load_venues(DEFAULT_VENUES))
    agreements = load_agreements(DEFAULT_AGREEMENTS, set(venues))
    partner_ids = partners(agreements)
    partners_of: dict[str, list[str]] = {}
    for a in agreements:
        if VENUE in a.provider_venues:
            for p in a.purposes:
                partners_of.setdefault(p.value, []).append(a.partner)
    with tempfile.TemporaryDirectory(prefix="techne-bench-e2e-") as tmp:
        root = Path(tmp)
        agent, metrics_url, requests_note = broker_requests.agent_options(root / "jmx")
        broker = LocalKafka(root / "kafka", java_options=agent)
        bootstrap = broker.start()
        requests: dict[str, dict[str, float]] = {}
        stack: Stack | None = None
        try:
            asyncio.run(ensure_topics(bootstrap, bus_topics(venues, partner_ids), 3))
            env = {**generate_secrets(venues), "TECHNE_BOOTSTRAP": bootstrap, "TECHNE_DATA_DIR": str(root / "data"),
                   "TECHNE_SINK_BATCH_SECONDS": "0.2"}
            secret = json.loads(env["TECHNE_VENUE_SECRETS"])[VENUE][0]
            orders = _orders(events, VENUE)
            key = env["TECHNE_SUBJECT_KEY"].encode()
            use_keyring(None)  # pre-encoded for the baseline only (the gateway seals what it receives)
            pre = [prepare(o, venue_id=VENUE, subject_key=key, auth="bench", fallback_id=uuid.uuid4()) for o in orders]
            baseline = asyncio.run(_baseline(bootstrap, [(r.key, r.value) for r in pre]))

            stack = Stack(env, root / "logs")
            port = int(stack.start_gateway().rsplit(":", 1)[1])
            stack.start_worker()
            sinks = [stack.start_sink(p) for p in partner_ids]
            stack.wait_group_stable("techne-worker", bootstrap)
            path = f"/v1/venues/{VENUE}/events/batch"
            consents = _consents(orders, partners_of)
            asyncio.run(_fire(port, [_signed(port, path, json.dumps(consents[i:i + BATCH]).encode(), secret)
                                     for i in range(0, len(consents), BATCH)], 4))
            groups = {"techne-worker": [raw_topic(VENUE)],
                      **{f"techne-sink.{p}": [partner_topic(p, s) for s in SHARED_STREAMS] for p in partner_ids}}
            asyncio.run(_wait_drained(bootstrap, groups, 600))  # the consents processed before the clock starts
            batches = [_signed(port, path, json.dumps(orders[i:i + BATCH]).encode(), secret)
                       for i in range(0, len(orders), BATCH)]
            pids = {name: svc.proc.pid for name, svc in stack.services.items()}
            if broker.proc is not None:
                pids["broker"] = broker.proc.pid
            pids["load generator"] = os.getpid()  # this process: HTTP client and lag polling
            counts_before = broker_requests.scrape(metrics_url) if metrics_url else None
            cpu_before = _cpu_seconds(pids)
            started = time.perf_counter()
            _, statuses = asyncio.run(_fire(port, batches, 8))
            drained = asyncio.run(_wait_drained(bootstrap, groups, 600))
            lags = {p: drained[f"techne-sink.{p}"] for p in partner_ids}
            elapsed = time.perf_counter() - started
            cpu_after = _cpu_seconds(pids)
            if metrics_url and counts_before is not None:
                requests = broker_requests.per_event(counts_before, broker_requests.scrape(metrics_url), len(orders))
            cpu_us = {name: round((cpu_after[name] - cpu_before[name]) / len(orders) * 1e6)
                      for name in cpu_after if name in cpu_before}

            ports = [s.metrics_port for s in sinks if s.metrics_port]
            before = _histogram(ports)
            paced = _orders(rate * seconds, VENUE)
            step = max(1, rate // 20)  # a batch every 50 ms
            for i in range(0, len(paced), step):
                t0 = time.perf_counter()
                body = json.dumps([{**o, "event_id": str(uuid.uuid4())} for o in paced[i:i + step]]).encode()
                asyncio.run(_fire(port, [_signed(port, path, body, secret)], 1))
                time.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
            asyncio.run(wait_sinks_caught_up(bootstrap, partner_ids, 120, poll=0.2))
            time.sleep(1.0)
            after = _histogram(ports)
            rss = {name: round(peak_rss_mib(s.proc.pid), 1) for name, s in stack.services.items()}
            rss_end = {name: {k: round(v, 1) for k, v in rss_mib(s.proc.pid).items()}
                       for name, s in stack.services.items()}
        finally:
            if stack is not None:
                stack.stop_all()
            broker.stop()
    eps = len(orders) / elapsed
    return {"events": len(orders), "statuses": {str(k): v for k, v in statuses.items()},
            "end_to_end_events_per_s": round(eps), "sink_lag_after": lags,
            "aiokafka_produce_consume_events_per_s": round(baseline),
            "ratio_vs_aiokafka_produce_consume": round(eps / baseline, 3),
            "paced_rate_events_per_s": rate, "paced_seconds": seconds,
            "latency_p50_s_le": _quantile(before, after, 0.5), "latency_p99_s_le": _quantile(before, after, 0.99),
            "peak_rss_mib": rss, "rss_end_mib": rss_end, "cpu_us_per_event": cpu_us,
            "cpu_us_per_event_total": sum(cpu_us.values()),
            "broker_requests_per_event": requests.get("requests", {}),
            "broker_messages_in_per_event": requests.get("messages_in", {}),
            "broker_produce_partition_entries_per_event": requests.get("produce_partition_entries", {}),
            "broker_fetch_partition_entries_per_event": requests.get("fetch_partition_entries", {}),
            "broker_requests_note": requests_note,
            "tunables": {k: v for k, v in os.environ.items() if k in TUNABLES}}


def main(events: int, rate: int, seconds: int, as_json: bool) -> None:
    r = run(events, rate, seconds)
    print(f"techne bench e2e — {r['events']} orders in signed batches of {BATCH}, gateway -> worker -> sinks")
    print(f"  end to end            {r['end_to_end_events_per_s']:>8} events/s")
    print(f"  aiokafka produce->consume {r['aiokafka_produce_consume_events_per_s']:>8} events/s (baseline)")
    print(f"  ratio                 {r['ratio_vs_aiokafka_produce_consume']:>8}")
    print(f"  latency at {r['paced_rate_events_per_s']} ev/s: p50 <= {r['latency_p50_s_le']} s, "
          f"p99 <= {r['latency_p99_s_le']} s (received_at -> row in the partner store)")
    print("  peak RSS MiB: " + ", ".join(f"{k} {v}" for k, v in r["peak_rss_mib"].items()))
    print("  RSS MiB at the end (private anon + shared file): "
          + ", ".join(f"{k} {v.get('anon')}+{v.get('file')}" for k, v in r["rss_end_mib"].items()))
    print(f"  CPU µs per event, summed over every process (broker included): {r['cpu_us_per_event_total']}")
    print("  CPU µs per event during the sustained phase: "
          + ", ".join(f"{k} {v}" for k, v in sorted(r["cpu_us_per_event"].items(), key=lambda kv: -kv[1])))
    print(broker_requests.summary(r))
    if as_json:
        print(json.dumps(r))
