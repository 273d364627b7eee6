"""A local replicated Kafka cluster (KRaft, three nodes by default) from the same Maven jars as
:class:`techne.local.LocalKafka`, for fault tests and benchmarks — production's shape on one machine.

Each node is broker and controller (a three-voter quorum survives one node down), listens on
its own loopback ports and keeps its own storage directory, all formatted with one cluster id.
Topics get what production sets (deploy/README.md, "Replicated Kafka: the settings the cluster
fault test proves"):

- ``default.replication.factor=3`` and ``min.insync.replicas=2``: a write acknowledged with
  ``acks=all`` is on at least two nodes; with fewer than two in sync, writes are refused
  (``NOT_ENOUGH_REPLICAS``) rather than acknowledged on one copy;
- ``unclean.leader.election.enable=false``: only an in-sync replica becomes leader;
- the internal topics (consumer offsets, transactions) replicated the same way.

Only ``broker.session.timeout.ms`` is shortened (3 s instead of 9 s) so that a killed node is
fenced, and its partitions get a new leader, sooner in tests.

:meth:`LocalCluster.kill` SIGKILLs one node, :meth:`LocalCluster.restart` brings it back on the
same ports and data; :meth:`LocalCluster.leader` and :meth:`LocalCluster.wait_in_sync` read the
partition state through the admin API. Node output goes to ``<dir>/node-<id>/broker.log``.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import LocalKafkaError
from techne.local import KAFKA_VERSION, LOG4J, fetch_jars, free_port, java_bin

PRODUCTION_TOPIC_SETTINGS = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
}
"""What the cluster proves for the bus's topics (and what production brokers set)."""


@dataclass
class Node:
    node_id: int
    directory: Path
    port: int
    controller_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / "broker.log"

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no broker.log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def node_properties(node: Node, voters: str, nodes: int, partitions: int) -> str:
    """``server.properties`` of one node (plaintext on loopback)."""
    replication = str(min(3, nodes))
    min_isr = str(min(2, nodes))
    settings = {**PRODUCTION_TOPIC_SETTINGS, "default.replication.factor": replication, "min.insync.replicas": min_isr}
    return "\n".join([
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{node.address},CONTROLLER://127.0.0.1:{node.controller_port}",
        f"advertised.listeners=PLAINTEXT://{node.address}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={node.directory / 'logs'}",
        f"num.partitions={partitions}",
        *(f"{k}={v}" for k, v in settings.items()),
        f"offsets.topic.replication.factor={replication}",
        "offsets.topic.num.partitions=3",
        f"transaction.state.log.replication.factor={replication}",
        f"transaction.state.log.min.isr={min_isr}",
        f"share.coordinator.state.topic.replication.factor={replication}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "broker.session.timeout.ms=3000",
        "broker.heartbeat.interval.ms=500",
        "",
    ])


class LocalCluster:
    """``brokers`` local KRaft nodes under ``directory`` (see module doc)."""

    def __init__(self, directory: Path, *, brokers: int = 3, partitions: int = 3,
                 version: str = KAFKA_VERSION, heap: str = "512m") -> None:
        self.directory = directory.resolve()
        self.version, self.partitions, self.heap = version, partitions, heap
        self.nodes = [Node(i, self.directory / f"node-{i}", 0, 0) for i in range(1, brokers + 1)]
        self._libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes)

    def node(self, node_id: int) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def _java(self, main: str, *args: str) -> list[str]:
        assert self._libs is not None
        return [java_bin(), "-Xms128m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{self._libs}/*", main,
                *args]

    def start(self, timeout: float = 120.0) -> str:
        """Configure and format (first time), start every node, wait until all are registered."""
        self._libs = fetch_jars(self.version)
        if not all((n.directory / "server.properties").exists() for n in self.nodes):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            for n in self.nodes:
                n.port, n.controller_port = free_port(), free_port()
            voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
            for n in self.nodes:
                n.directory.mkdir(parents=True, exist_ok=True)
                props = n.directory / "server.properties"
                props.write_text(node_properties(n, voters, len(self.nodes), self.partitions))
                fmt = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c",
                                                str(props)), capture_output=True, text=True, check=False)
                if fmt.returncode != 0:
                    raise LocalKafkaError(f"formatting node {n.node_id} failed:\n{fmt.stdout[-2000:]}"
                                          f"{fmt.stderr[-2000:]}")
        for n in self.nodes:
            self._launch(n)
        self._wait(lambda brokers: len(brokers) == len(self.nodes), timeout, "every node registered")
        return self.bootstrap

    def _launch(self, node: Node) -> None:
        with node.log_file.open("ab") as log:
            node.proc = subprocess.Popen(self._java("kafka.Kafka", str(node.directory / "server.properties")),
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    raise LocalKafkaError(f"node {n.node_id} exited with {n.proc.returncode}:\n{n.log_tail()}")
            try:
                if done(asyncio.run(self._brokers())):
                    return
            except Exception as exc:  # not answering yet
                last = exc
            time.sleep(0.5)
        raise LocalKafkaError(f"cluster: not {what} within {timeout:.0f}s (last error: {last!r})")

    async def _brokers(self) -> set[int]:
        from aiokafka.admin import AIOKafkaAdminClient

        live = ",".join(n.address for n in self.nodes if n.proc is not None)
        admin = AIOKafkaAdminClient(bootstrap_servers=live, request_timeout_ms=3000)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
            return {int(b["node_id"]) for b in cluster["brokers"]}
        finally:
            await admin.close()

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (fault injection)."""
        node = self.node(node_id)
        if node.proc is not None:
            node.proc.kill()
            node.proc.wait()
            node.proc = None

    def restart(self, node_id: int, timeout: float = 90.0) -> None:
        """Start a stopped node again (same ports, same data) and wait until it answers on its
        own port and is registered again."""
        import socket

        node = self.node(node_id)
        if node.proc is None:
            self._launch(node)

        def back(brokers: set[int]) -> bool:
            try:
                with socket.create_connection(("127.0.0.1", node.port), timeout=0.5):
                    return node_id in brokers
            except OSError:
                return False

        self._wait(back, timeout, f"node {node_id} back")

    def wait_new_leader(self, topic: str, partition: int, old: int, timeout: float = 60.0) -> int:
        """Wait until partition ``(topic, partition)`` is led by another node than ``old`` (after
        ``old`` was killed: the controller fenced it and elected an in-sync replica); return it."""
        deadline = time.monotonic() + timeout
        leader = old
        while time.monotonic() < deadline:
            try:
                leader = int(self.partitions_state([topic])[(topic, partition)]["leader"])
                if leader not in (old, -1):
                    return leader
            except Exception:  # noqa: S110 - the killed node was the one answering: retry
                pass
            time.sleep(0.3)
        raise LocalKafkaError(f"{topic}[{partition}] still led by {leader} {timeout:.0f}s after node {old} died")

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM every node, SIGKILL after ``grace`` seconds."""
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                n.proc.wait(grace)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
            n.proc = None

    def partitions_state(self, topics: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
        """``(topic, partition) -> {"leader", "replicas", "isr"}`` from the cluster's metadata."""
        async def describe() -> dict[tuple[str, int], dict[str, Any]]:
            from aiokafka.admin import AIOKafkaAdminClient

            live = ",".join(n.address for n in self.nodes if n.proc is not None)
            admin = AIOKafkaAdminClient(bootstrap_servers=live, request_timeout_ms=5000)
            await admin.start()
            try:
                described = await admin.describe_topics(topics)
            finally:
                await admin.close()
            return {(d["topic"], p["partition"]): {"leader": p["leader"], "replicas": list(p["replicas"]),
                                                   "isr": list(p["isr"])}
                    for d in described for p in d["partitions"]}

        return asyncio.run(describe())

    def leader(self, topic: str, partition: int = 0) -> int:
        return int(self.partitions_state([topic])[(topic, partition)]["leader"])

    def wait_in_sync(self, topics: list[str], timeout: float = 90.0) -> None:
        """Wait until every partition of ``topics`` has all its replicas in sync."""
        deadline = time.monotonic() + timeout
        state: dict[tuple[str, int], dict[str, Any]] = {}
        while time.monotonic() < deadline:
            try:
                state = self.partitions_state(topics)
                if state and all(sorted(s["isr"]) == sorted(s["replicas"]) for s in state.values()):
                    return
            except Exception:  # noqa: S110 - a node is still starting
                pass
            time.sleep(0.5)
        lagging = {k: v for k, v in state.items() if sorted(v["isr"]) != sorted(v["replicas"])}
        raise LocalKafkaError(f"replicas not in sync within {timeout:.0f}s: {lagging}")
