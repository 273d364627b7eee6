"""Consumer lag of the bus's consumer groups, measured from the broker's offsets.

Lag is what Kafka holds that a group has not consumed yet, per topic partition: the end offset
minus the group's committed offset (minus the log start when the group never committed, so a
sink that never started shows everything as lag). It is measured from the outside, through the
admin API (confluent-kafka's ``AdminClient``: ``list_consumer_group_offsets`` and
``list_offsets``), so it keeps being reported while the consumer itself is down or stuck, which
is exactly when it matters.

The groups watched and their topics, derived from the configuration (bounded label sets):

- the worker (``TECHNE_WORKER_ID``, ``techne-worker``) on every ``raw.*`` topic;
- the sink of each partner of the agreements (``techne-sink.<partner>``) on ``partner.<partner>.*``;
- the audit sink (``techne-audit-sink``) on ``techne.audit``.

``techne lag`` prints them once; ``techne lag --serve`` exports them as
``techne_consumer_lag{group, topic, partition}`` on ``TECHNE_METRICS_PORT`` and refreshes
every ``--interval`` seconds (one exporter per cluster; it runs as the ``lag-exporter`` service
in docker-compose.yml). Partners' own consumer groups are not exported: their names are the
partner's choice (under ``partner.<partner>.``), so they would make the label set unbounded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from techne import metrics
from techne.errors import TechneError
from techne.kafka_auth import KafkaAuth, confluent_config

log = logging.getLogger("techne.lag")


class LagUnavailable(TechneError):
    """The broker did not answer an offsets request."""


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    start: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - (self.start if self.committed is None else self.committed))


AUDIT_SINK_GROUP = "techne-audit-sink"  # sinks.consumer.AUDIT_GROUP (tests/unit/test_lag.py keeps them equal)


def sink_group(partner: str) -> str:
    return f"techne-sink.{partner}"  # sinks.consumer.group_for


def watched_groups(worker_id: str, partners: list[str]) -> dict[str, tuple[str, ...]]:
    """Consumer group -> prefixes of the topics it consumes."""
    return {worker_id: ("raw.",), **{sink_group(p): (f"partner.{p}.",) for p in partners},
            AUDIT_SINK_GROUP: ("techne.audit",)}


class LagMeter:
    """Measures lag through one admin client (thread-safe: librdkafka's admin client is)."""

    def __init__(self, bootstrap: str, auth: KafkaAuth, groups: dict[str, tuple[str, ...]],
                 timeout: float = 10.0) -> None:
        self.groups = groups
        self.timeout = timeout
        self._admin = AdminClient(confluent_config(auth, bootstrap))

    def measure(self) -> list[PartitionLag]:
        try:
            return self._measure()
        except KafkaException as exc:
            raise LagUnavailable(f"measuring consumer lag: {exc.args[0]}") from None

    def _measure(self) -> list[PartitionLag]:
        topics = self._admin.list_topics(timeout=self.timeout).topics
        plan = {group: [TopicPartition(t, p) for t in sorted(topics) if t.startswith(prefixes)
                        for p in sorted(topics[t].partitions)]
                for group, prefixes in self.groups.items()}
        every = {(tp.topic, tp.partition) for tps in plan.values() for tp in tps}
        if not every:
            return []
        start = self._offsets(every, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        end = self._offsets(every, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        out: list[PartitionLag] = []
        for group, tps in plan.items():
            if not tps:
                continue
            committed = self._committed(group, tps)
            for tp in tps:
                key = (tp.topic, tp.partition)
                out.append(PartitionLag(group, tp.topic, tp.partition, committed.get(key), start[key], end[key]))
        return out

    def _offsets(self, tps: set[tuple[str, int]], spec: OffsetSpec) -> dict[tuple[str, int], int]:
        futures = self._admin.list_offsets({TopicPartition(t, p): spec for t, p in tps},
                                           request_timeout=self.timeout)
        return {(tp.topic, tp.partition): int(f.result(self.timeout).offset) for tp, f in futures.items()}

    def _committed(self, group: str, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
        (future,) = self._admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                                            request_timeout=self.timeout).values()
        result = future.result(self.timeout)
        return {(tp.topic, tp.partition): int(tp.offset) for tp in result.topic_partitions if tp.offset >= 0}

    def export(self) -> None:
        """Measure once and replace every ``techne_consumer_lag`` series (a failure is counted, not raised)."""
        try:
            lags = self.measure()
        except LagUnavailable as exc:
            metrics.LAG_ERRORS.inc()
            log.warning("%s", exc)
            return
        metrics.CONSUMER_LAG.clear()
        for item in lags:
            metrics.CONSUMER_LAG.labels(group=item.group, topic=item.topic, partition=str(item.partition)).set(item.lag)

    def run(self, stop: threading.Event, interval: float) -> None:
        """Export every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.export()
            stop.wait(interval)


def format_table(lags: list[PartitionLag]) -> str:
    rows = [("group", "topic", "partition", "committed", "end", "lag")]
    rows += [(x.group, x.topic, str(x.partition), "-" if x.committed is None else str(x.committed), str(x.end),
              str(x.lag)) for x in lags]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))) for row in rows)
