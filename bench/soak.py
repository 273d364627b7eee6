"""``techne bench soak``: the live pipeline at a steady rate for N minutes, RSS of every process.

A local broker, the gateway, the worker, one sink per partner, the venue's own store sink and
the audit sink run while signed batches of ticket orders (fresh event ids, a share of people
consenting) arrive at ``rate`` events/s. Every ``sample`` seconds the resident memory (VmRSS)
of every process is read from ``/proc``; once a minute a line is printed. At the end the slope
of each process's RSS (least squares, MiB per minute) over the last 20 minutes, or the last two
thirds of a shorter run, says whether memory is flat: the first third is warm-up (imports, JIT
of the broker, caches filling to their bounds).

What bounds the in-memory state that could grow with traffic (see README, "Memory over time"):
sinks' recent-id window (``sinks/recent.py``, a fixed number of ids), chDB's caches
(``sinks/chdb.py`` :data:`ENGINE_SETTINGS`, capped), the worker's partitioner cache
(``streams/partitioner.py``, 8,192 keys: every audit record brings a new key), Prometheus label
sets (partners, purposes, event types, reasons: finite catalogues, never ids or free strings).
State that grows with people, not with events: the worker's consent ledger (one entry per person
and purpose, ~0.8 KiB, in Faust's table) and its data keys (``streams/keystore.py``, ~1 KiB each,
the keys made in the last raw-topic retention). The bench's orders come from ten people
(fresh event ids), so what it measures is growth per event, not per person.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.e2e import VENUE, _consents
from bench.ingest import _fire, _orders, _signed
from bench.procstat import rss_mib
from core.settings import DEFAULT_AGREEMENTS, DEFAULT_VENUES
from core.topics import bus_topics, ensure_topics
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets


def slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, MiB)`` samples, in MiB per minute (0.0 below 2 points)."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 60.0


def window(samples: Sequence[tuple[float, float]], minutes: float) -> list[tuple[float, float]]:
    """The samples the slope is taken over: the last 20 minutes, or the last two thirds of a
    shorter run (``minutes`` is the run's length)."""
    if not samples:
        return []
    span = 20.0 if minutes >= 30 else minutes * 2 / 3
    end = samples[-1][0]
    return [(t, v) for t, v in samples if t >= end - span * 60]


def run(minutes: float = 30.0, rate: int = 50, sample: float = 10.0, report: Any = print) -> dict[str, Any]:
    venues = sorted(load_venues(DEFAULT_VENUES))
    agreements = load_agreements(DEFAULT_AGREEMENTS, set(venues))
    partner_ids = partners(agreements)
    partners_of: dict[str, list[str]] = {}
    for a in agreements:
        if VENUE in a.provider_venues:
            for p in a.purposes:
                partners_of.setdefault(p.value, []).append(a.partner)
    series: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="techne-bench-soak-") as tmp:
        root = Path(tmp)
        broker = LocalKafka(root / "kafka")
        bootstrap = broker.start()
        stack: Stack | None = None
        try:
            asyncio.run(ensure_topics(bootstrap, bus_topics(venues, partner_ids), 3))
            env = {**generate_secrets(venues), "TECHNE_BOOTSTRAP": bootstrap, "TECHNE_DATA_DIR": str(root / "data")}
            secret = json.loads(env["TECHNE_VENUE_SECRETS"])[VENUE][0]
            stack = Stack(env, root / "logs")
            port = int(stack.start_gateway().rsplit(":", 1)[1])
            stack.start_worker()
            for partner in partner_ids:
                stack.start_sink(partner)
            stack.start_venue_sink(VENUE)
            stack.start_audit_sink()
            stack.wait_group_stable("techne-worker", bootstrap)
            path = f"/v1/venues/{VENUE}/events/batch"
            pids = {name: svc.proc.pid for name, svc in stack.services.items()}
            if broker.proc is not None:
                pids["broker"] = broker.proc.pid
            step = max(1, rate // 5)  # a batch every 200 ms
            started = time.monotonic()
            next_sample = started
            next_print = started + 60.0
            sent = 0
            while (now := time.monotonic()) < started + minutes * 60:
                orders = _orders(step, VENUE)
                body = json.dumps(orders if sent % (10 * step) else
                                  orders + _consents(orders[:5], partners_of)).encode()
                asyncio.run(_fire(port, [_signed(port, path, body, secret)], 1))
                sent += step
                if now >= next_sample:
                    stack.check()
                    for name, pid in pids.items():
                        mem = rss_mib(pid)
                        if "rss" in mem:
                            series.setdefault(name, []).append((now - started, mem["rss"]))
                    next_sample += sample
                if now >= next_print:
                    report(f"  {(now - started) / 60:4.0f} min  " + ", ".join(
                        f"{k} {v[-1][1]:.0f}" for k, v in series.items()))
                    next_print += 60.0
                time.sleep(max(0.0, 0.2 - (time.monotonic() - now)))
        finally:
            if stack is not None:
                stack.stop_all()
            broker.stop()
    slopes = {name: round(slope(window(s, minutes)), 2) for name, s in series.items()}
    return {"minutes": minutes, "rate_events_per_s": rate, "events": sent,
            "rss_mib": {name: [round(v, 1) for _, v in s] for name, s in series.items()},
            "sample_seconds": sample, "slope_mib_per_min": slopes,
            "slope_window_minutes": 20.0 if minutes >= 30 else round(minutes * 2 / 3, 1)}


def main(minutes: float, rate: int, as_json: bool) -> None:
    print(f"techne bench soak — {rate} events/s for {minutes} min; RSS MiB of every process each minute")
    r = run(minutes, rate)
    print(f"  RSS slope over the last {r['slope_window_minutes']} min (MiB/min): "
          + ", ".join(f"{k} {v:+.2f}" for k, v in r["slope_mib_per_min"].items()))
    if as_json:
        print(json.dumps(r))

