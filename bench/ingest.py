"""``techne bench ingest``: the gateway over real HTTP on loopback vs a bare aiokafka producer.

On a fresh local broker, the same N ticket orders are written three ways, each to its own raw
topic of a venue of ``deploy/venues.yaml``:

1. ``aiokafka_producer`` (baseline, in this process): a bare idempotent ``acks=all`` aiokafka
   producer sending the records already encoded (validation and encoding not timed);
2. ``gateway_batch``: ``POST /events/batch`` with 100-event JSON arrays, ``concurrency`` requests
   in flight, to the real gateway (``techne gateway``, a child process);
3. ``gateway_single``: one event per ``POST /events`` request, ``concurrency`` connections.

Requests are built and signed before the clock starts, and sent by a minimal keep-alive HTTP/1.1
client on asyncio streams, so the figures measure the gateway rather than the load generator.
Each figure counts from the first request to the last answer (202 only: anything else fails the
bench). ``gateway_single_requests_per_cpu_s`` divides the single requests by the CPU time the
gateway process used meanwhile (from ``/proc``): its rate on one dedicated core, since on a small
machine the gateway shares the cores with the broker and the load generator. The gateway's peak
RSS is its ``VmHWM`` from ``/proc``. ``ratio_vs_aiokafka_producer`` is
batch events/s over the baseline's. Both gateway phases then run again on a gateway with
``TECHNE_SEAL_IDENTIFIERS=false``: the ``unsealed_*`` figures and ``ratio_vs_unsealed_*`` give
what sealing identifiers (crypto-shredding) costs, per event in CPU µs and in rate. During the
sealed single-request phase the broker's CPU per request and its own Produce request count per
webhook request are read too (the JMX exporter agent, :mod:`bench.broker_requests`; absent without
it): what the gateway producer's linger (``TECHNE_PRODUCER_LINGER_MS``) gathers across
concurrent webhooks.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench import broker_requests
from bench.procstat import cpu_seconds, peak_rss_mib
from core.settings import DEFAULT_VENUES
from core.topics import KEYS, ensure_topics, raw_topic
from core.venues import load_venues
from producers.gateway.signatures import sign
from producers.ingest import derived_event_id, prepare, use_keyring
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets
from techne.traffic import generate

BATCH = 100
BASELINE_VENUE, BATCH_VENUE, SINGLE_VENUE = "opera-lyon", "chaillot", "gemeaux"


def _orders(n: int, venue: str) -> list[dict[str, Any]]:
    """``n`` realistic ticket orders (the generator's, any venue's programme), fresh event ids."""
    out = [{**ev.payload, "event_id": str(uuid.uuid4())} for ev in generate(int(n * 1.5) + 50, seed=3,
                                                                             invalid_share=0.0)
           if ev.kind == "order"]
    assert len(out) >= n, venue
    return out[:n]


async def baseline(bootstrap: str, records: Sequence[tuple[str, bytes, bytes]]) -> float:
    """Events/s of a bare aiokafka producer sending pre-encoded records (same settings as ours)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=value, key=key) for topic, key, value in records]
        await asyncio.gather(*futures)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def _request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _fire(port: int, requests: Sequence[bytes], concurrency: int) -> tuple[float, dict[int, int]]:
    """Send every request over ``concurrency`` keep-alive connections; (seconds, answers by status)."""
    queue = list(reversed(requests))
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                writer.write(queue.pop())
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, statuses


def _signed(port: int, path: str, body: bytes, secret: str, content_type: str = "application/json") -> bytes:
    headers = {"content-type": content_type,
               **sign(body, secret=secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=time.time())}
    return _request(port, path, body, headers)


def _gateway(env: dict[str, str], log_dir: Path, secrets: dict[str, str], events: int, singles: int,
             concurrency: int, broker: LocalKafka | None = None, metrics_url: str | None = None) -> dict[str, float]:
    """One gateway (``env``): batches then single requests; rates, CPU per single request, peak RSS;
    with ``broker``, its CPU per single request, and with ``metrics_url`` its Produce requests."""
    stack = Stack(env, log_dir)
    try:
        port = int(stack.start_gateway().rsplit(":", 1)[1])
        gateway_pid = stack.services["gateway"].proc.pid
        warm = [_signed(port, f"/v1/venues/{SINGLE_VENUE}/events", json.dumps(p).encode(), secrets[SINGLE_VENUE])
                for p in _orders(200, SINGLE_VENUE)]
        asyncio.run(_fire(port, warm, concurrency))  # connections, imports, producer metadata
        orders = _orders(events, BATCH_VENUE)
        batches = [_signed(port, f"/v1/venues/{BATCH_VENUE}/events/batch",
                           json.dumps(orders[i:i + BATCH]).encode(), secrets[BATCH_VENUE])
                   for i in range(0, len(orders), BATCH)]
        batch_cpu = cpu_seconds(gateway_pid)
        batch_s, batch_status = asyncio.run(_fire(port, batches, min(concurrency, 8)))
        batch_cpu = cpu_seconds(gateway_pid) - batch_cpu
        single = [_signed(port, f"/v1/venues/{SINGLE_VENUE}/events", json.dumps(p).encode(),
                          secrets[SINGLE_VENUE]) for p in _orders(singles, SINGLE_VENUE)]
        broker_pid = broker.proc.pid if broker is not None and broker.proc is not None else None
        counts = broker_requests.scrape(metrics_url) if metrics_url else None
        cpu_before, broker_cpu = cpu_seconds(gateway_pid), cpu_seconds(broker_pid) if broker_pid else 0.0
        single_s, single_status = asyncio.run(_fire(port, single, concurrency))
        single_cpu = cpu_seconds(gateway_pid) - cpu_before
        broker_cpu = cpu_seconds(broker_pid) - broker_cpu if broker_pid else float("nan")
        produce = (broker_requests.per_event(counts, broker_requests.scrape(metrics_url), len(single))["requests"]
                   .get("Produce", 0.0) if metrics_url and counts else float("nan"))
        rss = peak_rss_mib(gateway_pid)
    finally:
        stack.stop_all()
    if set(batch_status) != {202} or set(single_status) != {202}:
        raise RuntimeError(f"unexpected answers: batch {batch_status}, single {single_status}")
    return {"batch_eps": len(orders) / batch_s, "batch_cpu_us": batch_cpu / len(orders) * 1e6,
            "single_rps": len(single) / single_s, "single_per_cpu_s": len(single) / max(single_cpu, 1e-9),
            "single_cpu_us": single_cpu / len(single) * 1e6, "rss": rss, "events": len(orders),
            "singles": len(single), "broker_cpu_us": broker_cpu / len(single) * 1e6, "produce_requests": produce}


def run(events: int, singles: int, concurrency: int) -> dict[str, Any]:
    venues = sorted(load_venues(DEFAULT_VENUES))
    with tempfile.TemporaryDirectory(prefix="techne-bench-ingest-") as tmp:
        root = Path(tmp)
        agent, metrics_url, requests_note = broker_requests.agent_options(root / "jmx")
        broker = LocalKafka(root / "kafka", java_options=agent)
        broker.start()
        try:
            asyncio.run(ensure_topics(broker.bootstrap, [*(raw_topic(v) for v in venues), KEYS], 3))
            env = {**generate_secrets(venues), "TECHNE_BOOTSTRAP": broker.bootstrap,
                   "TECHNE_DATA_DIR": str(root / "data")}
            secrets = {v: s[0] for v, s in json.loads(env["TECHNE_VENUE_SECRETS"]).items()}
            key = env["TECHNE_SUBJECT_KEY"].encode()
            use_keyring(None)  # the baseline sends pre-encoded records: encoding is not what it measures
            base = [prepare(p, venue_id=BASELINE_VENUE, subject_key=key, auth="bench",
                            fallback_id=derived_event_id(BASELINE_VENUE, str(i)))
                    for i, p in enumerate(_orders(events, BASELINE_VENUE))]
            baseline_eps = asyncio.run(baseline(broker.bootstrap, [(r.topic, r.key, r.value) for r in base]))
            sealed = _gateway(env, root / "logs", secrets, events, singles, concurrency, broker, metrics_url)
            plain = _gateway({**env, "TECHNE_SEAL_IDENTIFIERS": "false", "TECHNE_DATA_DIR": str(root / "data-plain")},
                             root / "logs-plain", secrets, events, singles, concurrency)
        finally:
            broker.stop()
    return {"events": sealed["events"], "batch_size": BATCH, "single_requests": sealed["singles"],
            "concurrency": concurrency, "aiokafka_producer_events_per_s": round(baseline_eps),
            "gateway_batch_events_per_s": round(sealed["batch_eps"]),
            "gateway_single_requests_per_s": round(sealed["single_rps"]),
            "gateway_single_requests_per_cpu_s": round(sealed["single_per_cpu_s"]),
            "ratio_vs_aiokafka_producer": round(sealed["batch_eps"] / baseline_eps, 3),
            "gateway_peak_rss_mib": round(sealed["rss"], 1), "cpus": os.cpu_count(),
            "unsealed_gateway_batch_events_per_s": round(plain["batch_eps"]),
            "unsealed_gateway_single_requests_per_s": round(plain["single_rps"]),
            "unsealed_gateway_single_requests_per_cpu_s": round(plain["single_per_cpu_s"]),
            "batch_cpu_us_per_event": round(sealed["batch_cpu_us"], 1),
            "unsealed_batch_cpu_us_per_event": round(plain["batch_cpu_us"], 1),
            "single_cpu_us_per_request": round(sealed["single_cpu_us"], 1),
            "broker_cpu_us_per_single_request": round(sealed["broker_cpu_us"], 1),
            "broker_produce_requests_per_single_request": sealed["produce_requests"],
            "producer_linger_ms": os.environ.get("TECHNE_PRODUCER_LINGER_MS", "default"),
            "broker_requests_note": requests_note,
            "unsealed_single_cpu_us_per_request": round(plain["single_cpu_us"], 1),
            "ratio_vs_unsealed_batch": round(sealed["batch_eps"] / plain["batch_eps"], 3),
            "ratio_vs_unsealed_single_per_cpu_s": round(sealed["single_per_cpu_s"] / plain["single_per_cpu_s"], 3)}


def main(events: int, singles: int, concurrency: int, as_json: bool) -> None:
    figures = run(events, singles, concurrency)
    if not as_json:
        for name, value in figures.items():
            print(f"{name:34} {value}")
    print(json.dumps(figures) if as_json else "")
