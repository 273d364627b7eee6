"""Fault injection under load on the real broker and chDB: 0 lost, 0 duplicated, refused
subjects absent — with a negative control each (see harness.assert_sound)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.harness import assert_sound, fault_bus, make_plan, partner_tables, run_load, wait_decided

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_broker_killed_and_restarted_during_load(tmp_path: Path) -> None:
    bus = fault_bus(tmp_path)
    bus.start()
    try:
        plan = make_plan(n_people=60, n_orders=600)
        kills: list[float] = []

        def inject(elapsed: float) -> None:
            if (len(kills) == 0 and elapsed > 1.0) or (len(kills) == 1 and elapsed > 2.5):
                bus.kafka.kill()          # SIGKILL
                kills.append(elapsed)
                time.sleep(1.0)
                bus.kafka.start()         # same ports, same data

        results = run_load(bus, plan, rate=200, during=inject)
        assert len(kills) == 2
        statuses = {r.status for r in results}
        assert statuses <= {202}, f"every event eventually accepted, got {statuses}"
        wait_decided(bus, plan)
        bus.stack.check()
        assert_sound(plan, partner_tables(bus))
    finally:
        bus.stop()


def test_worker_killed_mid_load_and_a_second_worker_joins_and_leaves(tmp_path: Path) -> None:
    bus = fault_bus(tmp_path)
    bus.start()
    try:
        plan = make_plan(n_people=60, n_orders=600, seed=2)
        steps: list[str] = []

        def inject(elapsed: float) -> None:
            if not steps and elapsed > 0.8:
                bus.stack.kill("worker")                  # SIGKILL mid-batch
                bus.stack.start_worker("worker")
                steps.append("killed")
            elif steps == ["killed"] and elapsed > 1.6:
                bus.stack.start_worker("worker-2")        # rebalance: join
                steps.append("joined")
            elif steps == ["killed", "joined"] and elapsed > 2.6:
                bus.stack.stop("worker-2")                # rebalance: leave
                steps.append("left")

        results = run_load(bus, plan, rate=200, during=inject)
        assert steps == ["killed", "joined", "left"]
        assert {r.status for r in results} <= {202}
        wait_decided(bus, plan)
        assert_sound(plan, partner_tables(bus))
    finally:
        bus.stop()


def test_withdrawal_during_load_then_full_replay_brings_nothing_back(tmp_path: Path) -> None:
    import asyncio

    from core.topics import raw_topic
    from techne.accounting import group_lag
    from techne.stack import Stack
    from techne.traffic import send_all
    from tests.faults.harness import PARTNERS, VENUES, withdrawals_for
    from tests.integration.kafka_helpers import end_offsets

    bus = fault_bus(tmp_path)
    bus.start()
    try:
        plan = make_plan(n_people=60, n_orders=500, seed=3)
        granted = sorted({c.payload["customer"]["email"] for c in plan.consents
                          if c.payload["type"] == "consent.granted"})
        withdrawn = granted[:6]
        withdrawals = withdrawals_for(plan, withdrawn)
        sent: list[bool] = []

        def inject(elapsed: float) -> None:
            if not sent and elapsed > 1.0:
                results = asyncio.run(send_all(bus.url, withdrawals, bus.secrets))
                assert {r.status for r in results} == {202}
                sent.append(True)

        results = run_load(bus, plan, rate=200, during=inject)
        assert sent and {r.status for r in results} <= {202}
        wait_decided(bus, plan)
        # replay every raw topic from the beginning with a fresh worker group (and a fresh ledger)
        partner_topics = [f"partner.{p}.ticketing" for p in PARTNERS]
        before = asyncio.run(end_offsets(bus.kafka.bootstrap, partner_topics))
        replay_stack = Stack({**bus.env, "TECHNE_WORKER_ID": "techne-worker-replay"}, tmp_path / "logs-replay")
        try:
            replay = replay_stack.start_worker("worker-replay")
            topics = [raw_topic(v) for v in VENUES]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and asyncio.run(
                    group_lag(bus.kafka.bootstrap, "techne-worker-replay", topics)) > 0:
                time.sleep(1)
            assert replay.proc.poll() is None
            assert asyncio.run(group_lag(bus.kafka.bootstrap, "techne-worker-replay", topics)) == 0
        finally:
            replay_stack.stop_all()
        after = asyncio.run(end_offsets(bus.kafka.bootstrap, partner_topics))
        assert sum(after.values()) > sum(before.values()), "the replay re-shared events (duplicates for the sinks)"
        assert_sound(plan, partner_tables(bus))  # withdrawn people count as refused: no row of theirs
    finally:
        bus.stop()


def test_gateway_killed_after_producing_before_answering_sender_retries(tmp_path: Path) -> None:
    # every gateway process SIGKILLs itself right after its 120th durable delivery, before answering
    bus = fault_bus(tmp_path, TECHNE_TEST_FAULT="after_produce:120")
    bus.start()
    try:
        plan = make_plan(n_people=60, n_orders=500, seed=4)
        results = run_load(bus, plan, rate=200, supervise=True)
        restarts = bus.stack.services["gateway"].restarts
        assert restarts >= 2, "the gateway was killed and restarted during the load"
        assert {r.status for r in results} <= {202}, "every request eventually answered 202"
        wait_decided(bus, plan)
        assert_sound(plan, partner_tables(bus))  # re-sent events are stored once
    finally:
        bus.stop()
