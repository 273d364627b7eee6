"""Load + fault harness: a private bus (its own broker, gateway, worker, sinks) driven by a
steady load of signed events, and the checks every fault test ends with.

The expected outcome is computed from what the sender did, not from the routing code: an
order is expected at a partner iff its person granted, at that venue, a consent naming that
partner for a purpose of that partner's agreement with the venue — the consents of the load
are simple (granted to all of the venue's partners, or refused, or absent).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from core.settings import DEFAULT_AGREEMENTS, DEFAULT_VENUES, Settings
from core.topics import bus_topics, ensure_topics
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from sinks.runner import partner_rows
from techne.accounting import collect_audit, wait_sinks_caught_up
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets
from techne.traffic import Outgoing, send_all

VENUES = sorted(load_venues(DEFAULT_VENUES))
AGREEMENTS = load_agreements(DEFAULT_AGREEMENTS, set(VENUES))
PARTNERS = partners(AGREEMENTS)


def partners_for(venue: str) -> dict[str, list[str]]:
    """partner -> purposes of its agreements covering ``venue``."""
    out: dict[str, list[str]] = {}
    for a in AGREEMENTS:
        if venue in a.provider_venues:
            out.setdefault(a.partner, []).extend(p.value for p in a.purposes)
    return out


@dataclass
class Plan:
    """Who consents where, and every order sent with its intended recipients."""

    consents: list[Outgoing] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # e-mails that refused everywhere
    expected: dict[str, set[str]] = field(default_factory=lambda: {p: set() for p in PARTNERS})
    orders: list[Outgoing] = field(default_factory=list)
    owner: dict[str, str] = field(default_factory=dict)  # event_id -> email


def make_plan(n_people: int, n_orders: int, seed: int = 1) -> Plan:
    import random

    rng = random.Random(seed)
    now = datetime.now(UTC)
    plan = Plan()
    people = [(f"p{i:04d}.{seed}@faults.example", VENUES[i % len(VENUES)], i % 3) for i in range(n_people)]
    for email, venue, kind in people:
        if kind == 2:
            continue  # never answered
        for partner, purposes in partners_for(venue).items():
            for purpose in purposes:
                payload = {"type": "consent.granted" if kind == 0 else "consent.withdrawn",
                           "occurred_at": (now - timedelta(days=2)).isoformat(), "customer": {"email": email},
                           "purpose": purpose, "recipients": [partner] if kind == 0 else []}
                plan.consents.append(Outgoing(venue, payload, "consent"))
        if kind == 1:
            plan.refused.add(email)
    for i in range(n_orders):
        email, venue, kind = rng.choice(people)
        event_id = str(uuid.uuid4())
        payload = {"type": "ticket.order_placed", "event_id": event_id, "occurred_at": now.isoformat(),
                   "customer": {"email": email, "postal_code": "44000"}, "order_id": f"F{i}",
                   "production": "Faults", "performance_id": "perf",
                   "performance_at": (now + timedelta(days=9)).isoformat(),
                   "discipline": "theatre", "tariff": "plein", "channel": "web", "quantity": 1, "amount_minor": 1000}
        plan.orders.append(Outgoing(venue, payload, "order"))
        plan.owner[event_id] = email
        if kind == 0:
            for partner in partners_for(venue):
                plan.expected[partner].add(event_id)
    return plan


class Broker(Protocol):
    """What the harness needs of Kafka: one local broker or a local cluster."""

    @property
    def bootstrap(self) -> str: ...

    def start(self) -> str: ...

    def stop(self) -> None: ...


@dataclass
class FaultBus:
    root: Path
    kafka: Broker
    env: dict[str, str]
    stack: Stack
    url: str = ""

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.root / "data", bootstrap=self.kafka.bootstrap)

    @property
    def secrets(self) -> dict[str, str]:
        return {v: s[0] for v, s in json.loads(self.env["TECHNE_VENUE_SECRETS"]).items()}

    def start(self) -> None:
        bootstrap = self.kafka.start()
        self.env["TECHNE_BOOTSTRAP"] = bootstrap  # the stack's children read the same dict
        replication = int(self.env.get("TECHNE_REPLICATION_FACTOR", "1"))
        asyncio.run(ensure_topics(bootstrap, bus_topics(VENUES, PARTNERS), 3, replication))
        self.url = self.stack.start_gateway()
        self.stack.start_worker()
        for p in PARTNERS:
            self.stack.start_sink(p)
        self.stack.wait_group_stable("techne-worker", bootstrap)

    def stop(self) -> None:
        self.stack.stop_all()
        self.kafka.stop()


def fault_bus(root: Path, **extra_env: str) -> FaultBus:
    kafka = LocalKafka(root / "kafka")
    env = {**generate_secrets(VENUES), "TECHNE_DATA_DIR": str(root / "data"), "TECHNE_SINK_BATCH_SECONDS": "0.3",
           "TECHNE_PRODUCE_TIMEOUT_S": "3", **extra_env}
    bus = FaultBus(root, kafka, env, Stack(env, root / "logs", module="tests.support.faults"))
    kafka.port = None
    return bus


def run_load(bus: FaultBus, plan: Plan, *, rate: float, during: Callable[[float], None] | None = None,
             retries: int = 12, supervise: bool = False) -> list[Any]:
    """Send the consents, then the orders at about ``rate`` per second; ``during(elapsed)`` is
    called between bursts (the fault injector). With ``supervise``, a thread restarts crashed
    children every 0.3 s while requests are in flight (for faults that kill the gateway itself).
    Returns every send result."""
    import threading

    stop = threading.Event()

    def supervisor() -> None:
        while not stop.wait(0.3):
            bus.stack.revive()

    watcher = threading.Thread(target=supervisor, daemon=True) if supervise else None
    if watcher is not None:
        watcher.start()
    try:
        return _load(bus, plan, rate=rate, during=during, retries=retries, revive=watcher is None)
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()


def _load(bus: FaultBus, plan: Plan, *, rate: float, during: Callable[[float], None] | None, retries: int,
          revive: bool) -> list[Any]:
    results = asyncio.run(send_all(bus.url, plan.consents, bus.secrets, retries=retries))
    burst = max(1, int(rate / 5))
    start = time.monotonic()
    for i in range(0, len(plan.orders), burst):
        t0 = time.monotonic()
        results += asyncio.run(send_all(bus.url, plan.orders[i:i + burst], bus.secrets, retries=retries))
        if during is not None:
            during(time.monotonic() - start)
        if revive:
            bus.stack.revive()  # a supervisor restarts what crashed (compose: restart: unless-stopped)
        time.sleep(max(0.0, 0.2 - (time.monotonic() - t0)))
    return results


def partner_tables(bus: FaultBus, timeout: float = 120.0) -> dict[str, list[tuple[Any, ...]]]:
    """Wait until every order is decided and every sink caught up, stop the sinks, read the tables."""
    lags = asyncio.run(wait_sinks_caught_up(bus.kafka.bootstrap, PARTNERS, timeout))
    assert not any(lags.values()), f"sinks still lagging: {lags}"
    for p in PARTNERS:
        bus.stack.stop(f"sink-{p}")
    sql = "SELECT toString(event_id), count() OVER (), uniqExact(event_id) OVER () FROM ticket_orders"
    return {p: partner_rows(bus.settings, p, sql) for p in PARTNERS}


def wait_decided(bus: FaultBus, plan: Plan, timeout: float = 120.0) -> dict[str, list[dict[str, Any]]]:
    ids = {str(o.payload["event_id"]) for o in plan.orders}
    deadline = time.monotonic() + timeout
    audit: dict[str, list[dict[str, Any]]] = {}
    while time.monotonic() < deadline and not ids <= set(audit):
        bus.stack.revive()
        audit = asyncio.run(collect_audit(bus.kafka.bootstrap, ids, 10))
    missing = ids - set(audit)
    assert not missing, f"{len(missing)} orders never decided by the worker"
    return audit


def discrepancies(plan: Plan, tables: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Everything wrong with the partner tables: lost, duplicated, unexpected or refused rows."""
    problems = []
    for partner, rows in tables.items():
        ids = [r[0] for r in rows]
        if rows and not (len(ids) == rows[0][1] == rows[0][2] == len(set(ids))):
            problems.append(f"{partner}: duplicated rows ({len(ids)} rows, {len(set(ids))} distinct)")
        lost = plan.expected[partner] - set(ids)
        extra = set(ids) - plan.expected[partner]
        if lost:
            problems.append(f"{partner}: {len(lost)} lost")
        if extra:
            problems.append(f"{partner}: {len(extra)} unexpected")
        refused = [i for i in ids if plan.owner.get(i) in plan.refused]
        if refused:
            problems.append(f"{partner}: {len(refused)} rows of people who refused")
    return problems


def assert_sound(plan: Plan, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    """0 lost, 0 duplicated, nothing unexpected, no refused person — plus the negative control:
    the same tables checked against a plan with one more expected event must fail."""
    assert discrepancies(plan, tables) == []
    assert sum(len(v) for v in plan.expected.values()) > 0, "the load must share something"
    perturbed = Plan(plan.consents, plan.refused, {p: set(ids) for p, ids in plan.expected.items()}, plan.orders,
                     plan.owner)
    perturbed.expected[PARTNERS[0]].add(str(uuid.uuid4()))
    assert discrepancies(perturbed, tables), "negative control: a lost event must be detected"


def withdrawals_for(plan: Plan, emails: list[str]) -> list[Outgoing]:
    """Withdrawal events (now) for every consent these people granted; updates the expectation:
    none of their orders may remain at any partner (shared ones are erased)."""
    out = []
    chosen = set(emails)
    for consent in plan.consents:
        email = consent.payload["customer"]["email"]
        if email in chosen and consent.payload["type"] == "consent.granted":
            payload = {**consent.payload, "type": "consent.withdrawn", "recipients": [],
                       "occurred_at": datetime.now(UTC).isoformat()}
            out.append(Outgoing(consent.venue_id, payload, "consent"))
    for partner in plan.expected:
        plan.expected[partner] = {e for e in plan.expected[partner] if plan.owner[e] not in chosen}
    plan.refused |= chosen
    return out
