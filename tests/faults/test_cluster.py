"""A replicated cluster as production runs it (three KRaft nodes, replication factor 3,
min.insync.replicas=2), in the style of Kafka's own replication tests: under load, SIGKILL the
leader of a raw partition, then of a partner partition on another node, bring each back; every
event answered 202 must be in the partner tables exactly once, refused subjects absent (with the
harness's negative control), and with two nodes down a write is refused rather than kept on one
copy while a topic allowing one in-sync replica accepts it (the control of that setting)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from core.topics import bus_topics, partner_topic, raw_topic
from techne.cluster import LocalCluster
from techne.stack import Stack, generate_secrets
from tests.faults.harness import (
    PARTNERS,
    VENUES,
    FaultBus,
    assert_sound,
    make_plan,
    partner_tables,
    run_load,
    wait_decided,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.cluster]


@pytest.fixture
def cluster_bus(tmp_path: Path) -> Iterator[tuple[FaultBus, LocalCluster]]:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "Unable connect" to the killed node, by design
    cluster = LocalCluster(tmp_path / "cluster")
    env = {**generate_secrets(VENUES), "TECHNE_DATA_DIR": str(tmp_path / "data"), "TECHNE_SINK_BATCH_SECONDS": "0.3",
           "TECHNE_PRODUCE_TIMEOUT_S": "3", "TECHNE_REPLICATION_FACTOR": "3"}
    bus = FaultBus(tmp_path, cluster, env, Stack(env, tmp_path / "logs"))
    try:
        bus.start()
        yield bus, cluster
    finally:
        bus.stop()


def test_leaders_killed_under_load_lose_and_duplicate_nothing(cluster_bus: tuple[FaultBus, LocalCluster]) -> None:
    bus, cluster = cluster_bus
    topics = bus_topics(VENUES, PARTNERS)
    cluster.wait_in_sync(topics)
    state = cluster.partitions_state(topics)
    assert {len(s["replicas"]) for s in state.values()} == {3}, "every bus topic has three replicas"
    raw, shared = raw_topic(VENUES[0]), partner_topic(PARTNERS[0], "ticketing")
    plan = make_plan(n_people=60, n_orders=3000, seed=9)  # ~30 s at 100/s: both kills and restarts fit in
    killed: list[tuple[str, int, int]] = []  # (topic, old leader, new leader)
    restarting: list[threading.Thread] = []

    def kill_leader(topic: str) -> None:
        old = cluster.leader(topic)
        cluster.kill(old)                                  # SIGKILL, mid-load
        killed.append((topic, old, cluster.wait_new_leader(topic, 0, old)))

        def back() -> None:
            cluster.restart(old)
            cluster.wait_in_sync(topics)

        restarting.append(threading.Thread(target=back))
        restarting[-1].start()                             # the load goes on while it comes back

    def inject(elapsed: float) -> None:
        if not killed and elapsed > 1.0:
            kill_leader(raw)
        elif len(killed) == 1 and not restarting[0].is_alive():
            kill_leader(shared)

    results = run_load(bus, plan, rate=100, during=inject)
    for thread in restarting:
        thread.join()
    assert [k[0] for k in killed] == [raw, shared], f"both kills happened during the load: {killed}"
    assert killed[0][1] != killed[1][1], f"the two kills hit different nodes: {killed}"
    assert all(new != old for _, old, new in killed)
    assert {r.status for r in results} <= {202}, "every event eventually accepted"
    wait_decided(bus, plan)
    assert_sound(plan, partner_tables(bus))  # 0 lost, 0 duplicated, refused absent, negative control

    # min.insync.replicas=2 is in force: the bus's topics inherit it from the brokers, and with one
    # of two replicas left a write is refused (NOT_ENOUGH_REPLICAS) rather than kept on one copy,
    # while the control topic (min.insync.replicas=1, same replicas) takes the same write.
    bus.stack.stop_all()  # the bus's processes are done
    assert _topic_config(cluster.bootstrap, raw)["min.insync.replicas"] == "2"
    survivor, victim = killed[1][2], killed[1][1]
    asyncio.run(_create_probes(cluster.bootstrap, [survivor, victim]))
    cluster.wait_in_sync(["isr-default", "isr-control"])
    cluster.kill(victim)                                   # the quorum keeps two of three voters
    _wait_isr(cluster, ["isr-default", "isr-control"], survivor)
    with pytest.raises(KafkaError):
        asyncio.run(_produce(cluster.node(survivor).address, "isr-default"))
    asyncio.run(_produce(cluster.node(survivor).address, "isr-control"))


def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return {name: str(entry.value) for name, entry in future.result(30).items()}


async def _create_probes(bootstrap: str, replicas: list[int]) -> None:
    """Two one-partition topics on the same two nodes, leader first: one with the brokers'
    min.insync.replicas (no override), one allowing a single in-sync replica."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic("isr-default", -1, -1, replica_assignments={0: replicas}),
            NewTopic("isr-control", -1, -1, replica_assignments={0: replicas},
                     topic_configs={"min.insync.replicas": "1"}),
        ])
    finally:
        await admin.close()


def _wait_isr(cluster: LocalCluster, topics: list[str], survivor: int, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    state: dict[tuple[str, int], dict[str, object]] = {}
    while time.monotonic() < deadline:
        try:
            state = cluster.partitions_state(topics)
            if len(state) == len(topics) and all(s["isr"] == [survivor] == [s["leader"]] for s in state.values()):
                return
        except Exception:  # noqa: S110 - the killed node's metadata is refreshing
            pass
        time.sleep(0.3)
    raise AssertionError(f"ISR never shrank to [{survivor}]: {state}")


async def _produce(bootstrap: str, topic: str) -> None:
    """One ``acks=all`` write (not idempotent: that producer would retry a refusal forever)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=4000)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"isr probe", partition=0), 20)
    except TimeoutError as exc:
        raise KafkaError(f"not acknowledged within 20 s: {topic}") from exc
    finally:
        await asyncio.wait_for(producer.stop(), 20)
