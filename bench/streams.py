"""``techne bench streams``: events/s through consent + pseudonymize + route on one worker.

On a fresh local broker, N raw events (10 % consent changes, the rest ticket orders of the
same subjects) are produced once, then consumed by three processors, each in its own
consumer group, one after the other:

1. ``aiokafka_passthrough``: a bare aiokafka consume -> produce loop (in this process);
2. ``faust_forwarder``: the smallest Faust agent that forwards each message (a child process);
3. ``techne_worker``: the real worker (``techne worker``, a child process).

Throughput is measured from the broker's own timestamps of the outputs (first to last), so
process start-up and group join are not counted. Every processor writes at least one record
per input (our worker: one audit record per input, plus one record per partner it shares with).
Peak RSS of the child processes is read from ``/proc/<pid>/status`` (VmHWM) before they are
stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.procstat import peak_rss_mib
from core.identity import subject_ref
from core.topics import AUDIT, bus_topics, ensure_topics, partitions_of, raw_topic
from schemas import CATALOGUE
from schemas.models import CONSENT, TICKET_ORDER
from techne.local import LocalKafka
from techne.stack import generate_secrets

VENUE = "bench-venue"
PARTNERS = ("bench-p1", "bench-p2")


def make_events(n: int, subject_key: bytes) -> list[tuple[bytes, bytes]]:
    """``(key, framed Avro value)`` pairs: realistic orders, 10 % consent changes first."""
    now = datetime.now(UTC)
    subjects = [f"bench{i:06d}@exemple.fr" for i in range(max(10, n // 20))]
    out: list[tuple[bytes, bytes]] = []
    n_consent = n // 10
    for i in range(n):
        email = subjects[i % len(subjects)]
        subject = {"email": email, "customer_id": None, "postal_code": "69003"}
        key = subject_ref(subject_key, VENUE, subject).encode()
        common = {"event_id": str(uuid.uuid4()), "occurred_at": now - timedelta(minutes=n - i), "received_at": now,
                  "venue_id": VENUE, "source_system": "bench", "subject": subject, "schema_version": 1}
        if i < n_consent:
            record = {**common, "event_type": "consent.granted" if i % 3 else "consent.withdrawn",
                      "purpose": "cross_venue_analytics", "recipients": list(PARTNERS),
                      "recipient_list_version": "1", "proof_ref": None}
            out.append((key, CATALOGUE.encode(CONSENT, record)))
        else:
            record = {**common, "event_type": "ticket.order_placed", "order_id": f"B{i}", "production": "Tosca",
                      "performance_id": "P1", "performance_at": now + timedelta(days=30), "discipline": "opera",
                      "tariff": "plein", "channel": "web", "quantity": 2, "amount_minor": 9000, "currency": "EUR"}
            out.append((key, CATALOGUE.encode(TICKET_ORDER, record)))
    return out


async def produce(bootstrap: str, topic: str, events: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def passthrough(bootstrap: str, source: str, target: str, n: int) -> None:
    """Baseline 2: bare aiokafka consume -> produce, committing after each produced batch."""
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id="bench-passthrough",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=2000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < n:
            batches = await consumer.getmany(timeout_ms=500)
            futures = [await producer.send(target, value=m.value, key=m.key)
                       for msgs in batches.values() for m in msgs]
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(futures)
    finally:
        await producer.stop()
        await consumer.stop()


async def output_span(bootstrap: str, topic: str, expected: int, timeout: float,
                      producer: subprocess.Popen[bytes] | None = None) -> tuple[int, float]:
    """Wait until ``expected`` records are on ``topic`` (or ``timeout``, or the ``producer``
    process exited and nothing more arrives); return (count, last - first timestamp in s)."""
    deadline = time.monotonic() + timeout
    parts = (await partitions_of(bootstrap, [topic]))[topic]
    tps = [TopicPartition(topic, p) for p in parts]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=5000)
    await consumer.start()
    count, first, last = 0, float("inf"), 0.0
    try:
        consumer.assign(tps)
        while count < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for msgs in batches.values():
                for m in msgs:
                    count += 1
                    first, last = min(first, m.timestamp), max(last, m.timestamp)
            if not batches and producer is not None and producer.poll() is not None:
                break  # it died: report what it wrote rather than wait for the timeout
        return count, max(1e-3, (last - first) / 1000.0)
    finally:
        await consumer.stop()


def _child(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> float:
    rss = peak_rss_mib(proc.pid)
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    return rss


def run(n: int = 20_000, timeout: float = 300.0) -> dict[str, Any]:
    """Run the three processors on the same ``n`` messages and return the figures."""
    with tempfile.TemporaryDirectory(prefix="techne-bench-") as tmp:
        root = Path(tmp)
        broker = LocalKafka(root / "kafka", partitions=3)
        bootstrap = broker.start()
        try:
            secrets = generate_secrets([VENUE])
            source = raw_topic(VENUE)
            asyncio.run(ensure_topics(bootstrap, [*bus_topics([VENUE], list(PARTNERS)), "bench.passthrough",
                                                  "bench.forward"], 3))
            events = make_events(n, secrets["TECHNE_SUBJECT_KEY"].encode())
            asyncio.run(produce(bootstrap, source, events))
            results: dict[str, Any] = {"events": n}

            t0 = time.monotonic()
            asyncio.run(passthrough(bootstrap, source, "bench.passthrough", n))
            count, span = asyncio.run(output_span(bootstrap, "bench.passthrough", n, timeout))
            results["aiokafka_passthrough"] = {"events_per_s": round(count / span), "wall_s": time.monotonic() - t0}

            fwd = _child([sys.executable, "-m", "bench.streams_forward", bootstrap, source, "bench.forward",
                          "bench-forwarder"], {}, root / "forward.log")
            count, span = asyncio.run(output_span(bootstrap, "bench.forward", n, timeout, fwd))
            results["faust_forwarder"] = {"events_per_s": round(count / span), "peak_rss_mib": _stop(fwd),
                                          "received": count}

            (root / "venues.yaml").write_text(f"venues:\n  - id: {VENUE}\n    name: Bench\n")
            agreements = root / "agreements"
            agreements.mkdir()
            for p in PARTNERS:
                (agreements / f"{p}.yaml").write_text(
                    f"id: dsa-{p}\nprovider_venues: [{VENUE}]\npartner: {p}\npurposes: [cross_venue_analytics]\n"
                    "event_types: [ticket.order_placed]\nallowed_fields: [production, discipline, quantity]\n"
                    "retention_days: 30\nvalid_from: 2020-01-01\nvalid_until: 2099-12-31\n")
            env = {**secrets, "TECHNE_BOOTSTRAP": bootstrap, "TECHNE_DATA_DIR": str(root / "data"),
                   "TECHNE_VENUES_FILE": str(root / "venues.yaml"), "TECHNE_AGREEMENTS_DIR": str(agreements)}
            worker = _child([sys.executable, "-m", "techne.cli", "worker"], env, root / "worker.log")
            expected = n  # one audit record per input message
            count, span = asyncio.run(output_span(bootstrap, AUDIT, expected, timeout, worker))
            if count < expected:
                tail = (root / "worker.log").read_text(errors="replace").splitlines()[-30:]
                print(f"worker produced {count}/{expected} audit records; worker.log:\n" + "\n".join(tail),
                      file=sys.stderr)
            results["techne_worker"] = {"events_per_s": round(n * min(1.0, count / expected) / span),
                                        "peak_rss_mib": _stop(worker), "audit_records": count}
            ours = results["techne_worker"]["events_per_s"]
            results["ratio_vs_faust_forwarder"] = round(ours / max(1, results["faust_forwarder"]["events_per_s"]), 3)
            results["ratio_vs_aiokafka_passthrough"] = round(
                ours / max(1, results["aiokafka_passthrough"]["events_per_s"]), 3)
            results["faust_forwarder_vs_aiokafka_passthrough"] = round(
                results["faust_forwarder"]["events_per_s"] / max(1, results["aiokafka_passthrough"]["events_per_s"]),
                3)
            return results
        finally:
            broker.stop()


def print_table(r: dict[str, Any]) -> None:
    print(f"techne bench streams — {r['events']} events, one worker, real broker")
    print(f"{'processor':<24}{'events/s':>12}{'peak RSS MiB':>14}")
    for name in ("aiokafka_passthrough", "faust_forwarder", "techne_worker"):
        row = r[name]
        rss = row.get("peak_rss_mib")
        print(f"{name:<24}{row['events_per_s']:>12}{'' if rss is None else f'{rss:>14.0f}'}")
    print(f"ratio vs faust forwarder: {r['ratio_vs_faust_forwarder']}; "
          f"vs aiokafka passthrough: {r['ratio_vs_aiokafka_passthrough']}; "
          f"faust forwarder vs passthrough: {r['faust_forwarder_vs_aiokafka_passthrough']}")


def main(n: int, as_json: bool) -> None:
    results = run(n)
    print_table(results)
    if as_json:
        print(json.dumps(results))
