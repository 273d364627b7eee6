"""Measure how fast a withdrawal reaches partners (used by ``techne demo``).

For each withdrawal accepted by the gateway at ``t0`` (client clock, same machine):
* **stop**: the worker recorded it (audit ``consent_recorded``) — from then on that person's
  new events are not shared, because a person's events are processed in order;
* **erased**: every partner sink executed the erasure commands it caused (audit ``erased``,
  linked through ``command_id``).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def _ts(value: str) -> float:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 3)


def latencies(accepted_at: Mapping[str, float], audit: Mapping[str, list[dict[str, Any]]],
              erased: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """``accepted_at``: withdrawal event id -> t0; ``audit``: decisions by event id; ``erased``:
    sink ``erased`` records by command id. Returns counts and p50/p99 in seconds."""
    stops, erasures, pending = [], [], 0
    for event_id, t0 in accepted_at.items():
        lines = audit.get(event_id, [])
        recorded = [_ts(d["decided_at"]) for d in lines if d["outcome"] == "consent_recorded"]
        if recorded:
            stops.append(max(0.0, min(recorded) - t0))
        commands = [d["command_id"] for d in lines if d["outcome"] == "erasure_requested" and d.get("command_id")]
        if commands and all(c in erased for c in commands):
            erasures.append(max(0.0, max(_ts(erased[c]["decided_at"]) for c in commands) - t0))
        elif commands:
            pending += 1
    return {"withdrawals": len(accepted_at), "stopped": len(stops), "stop_p50_s": _pct(stops, 50),
            "stop_p99_s": _pct(stops, 99), "erasures_done": len(erasures), "erasures_pending": pending,
            "erased_p50_s": _pct(erasures, 50), "erased_p99_s": _pct(erasures, 99)}
