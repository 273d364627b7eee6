"""Consumer lag of the bus's consumer groups, measured from the broker's offsets.

Lag is what Kafka holds that a group has not consumed yet, per topic partition: the end offset
minus the group's committed offset (minus the log start when the group never committed, so a
sink that never started shows everything as lag). It is measured from the outside, through the
admin API (aiokafka: the group's committed offsets from its coordinator, the log start and
end offsets from the partition leaders), so it keeps being reported while the consumer itself is
down or stuck, which is exactly when it matters. (librdkafka's admin client was tried first: its
process crashed now and then with SIGSEGV on a freshly started broker; aiokafka is pure Python.)

The groups watched and their topics, derived from the configuration (bounded label sets):

- the worker (``TECHNE_WORKER_ID``, ``techne-worker``) on every ``raw.*`` topic;
- the sink of each partner of the agreements (``techne-sink.<partner>``) on ``partner.<partner>.*``;
- the sink of each venue's own store (``techne-sink.venue:<venue>``) on ``venue.<venue>.*``;
- the audit sink (``techne-audit-sink``) on ``techne.audit``.

``techne lag`` prints them once; ``techne lag --serve`` exports them as
``techne_consumer_lag{group, topic, partition}`` on ``TECHNE_METRICS_PORT`` and refreshes
every ``--interval`` seconds (one exporter per cluster; it runs as the ``lag-exporter`` service
in docker-compose.yml). Partners' own consumer groups are not exported: their names are the
partner's choice (under ``partner.<partner>.``), so they would make the label set unbounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from core import metrics
from core.errors import LagUnavailable as LagUnavailable  # defined with the whole tree
from core.kafka_auth import KafkaAuth, aiokafka_kwargs

log = logging.getLogger("techne.lag")
AUDIT_SINK_GROUP = "techne-audit-sink"  # sinks.consumer.AUDIT_GROUP (tests/unit/test_lag.py keeps them equal)



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


def sink_group(partner: str) -> str:
    return f"techne-sink.{partner}"  # sinks.consumer.group_for


def watched_groups(worker_id: str, partners: list[str], venues: list[str] | tuple[str, ...] = ()
                   ) -> dict[str, tuple[str, ...]]:
    """Consumer group -> prefixes of the topics it consumes (``venues``: their own stores' sinks)."""
    return {worker_id: ("raw.",), **{sink_group(p): (f"partner.{p}.",) for p in partners},
            **{sink_group(f"venue:{v}"): (f"venue.{v}.",) for v in venues},
            AUDIT_SINK_GROUP: ("techne.audit",)}


class LagMeter:
    """Measures lag with two long-lived clients (an admin client and a group-less consumer).

    Use as ``async with LagMeter(...) as meter: await meter.measure()``.
    """

    def __init__(self, bootstrap: str, auth: KafkaAuth, groups: dict[str, tuple[str, ...]],
                 timeout: float = 10.0) -> None:
        self.groups = groups
        self.timeout = timeout
        options: dict[str, Any] = {"bootstrap_servers": bootstrap, "request_timeout_ms": int(timeout * 1000),
                                   **aiokafka_kwargs(auth)}
        self._options = options
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> LagMeter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(**self._options)
            consumer = AIOKafkaConsumer(enable_auto_commit=False, **self._options)
            try:
                await asyncio.wait_for(admin.start(), self.timeout)
                await asyncio.wait_for(consumer.start(), self.timeout)
            except BaseException:
                await consumer.stop()
                await admin.close()
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None

    async def measure(self) -> list[PartitionLag]:
        """One measurement; retriable broker errors (a coordinator still loading...) are retried for ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return await asyncio.wait_for(self._measure(), self.timeout * 3)
            except KafkaError as exc:
                if getattr(exc, "retriable", False) and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    continue
                error: Exception = exc
            except (OSError, TimeoutError) as exc:
                error = exc
            await self.close()  # reconnect from scratch next time
            raise LagUnavailable(f"measuring consumer lag at {self._options['bootstrap_servers']}: "
                                 f"{type(error).__name__}: {error}") from None

    async def _measure(self) -> list[PartitionLag]:
        admin, consumer = await self._clients()
        prefixes = tuple(p for group_prefixes in self.groups.values() for p in group_prefixes)
        names = sorted(t for t in await admin.list_topics() if t.startswith(prefixes))
        partitions = {d["topic"]: sorted(p["partition"] for p in d["partitions"])
                      for d in (await admin.describe_topics(names) if names else [])}
        plan = {group: [TopicPartition(t, p) for t in names if t.startswith(group_prefixes)
                        for p in partitions.get(t, [])]
                for group, group_prefixes in self.groups.items()}
        every = sorted({tp for tps in plan.values() for tp in tps})
        if not every:
            return []
        start = await consumer.beginning_offsets(every)
        end = await consumer.end_offsets(every)
        out: list[PartitionLag] = []
        for group, tps in plan.items():
            if not tps:
                continue
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            for tp in tps:
                done = committed.get(tp)
                offset = done.offset if done is not None and done.offset >= 0 else None
                out.append(PartitionLag(group, tp.topic, tp.partition, offset, start[tp], end[tp]))
        return out

    async def export(self) -> None:
        """Measure once and replace every ``techne_consumer_lag`` series (a failure is counted, not raised)."""
        try:
            lags = await self.measure()
        except LagUnavailable as exc:
            metrics.LAG_ERRORS.inc()
            log.warning("%s", exc)
            return
        metrics.CONSUMER_LAG.clear()
        for item in lags:
            metrics.CONSUMER_LAG.labels(group=item.group, topic=item.topic, partition=str(item.partition)).set(item.lag)

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Export every ``interval`` seconds until ``stop`` is set."""
        try:
            while not stop.is_set():
                await self.export()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
        finally:
            await self.close()


async def measure_once(bootstrap: str, auth: KafkaAuth, groups: dict[str, tuple[str, ...]]) -> list[PartitionLag]:
    async with LagMeter(bootstrap, auth, groups) as meter:
        return await meter.measure()


async def serve(meter: LagMeter, interval: float) -> None:
    """Run the exporter until SIGTERM or SIGINT."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await meter.run(stop, interval)


def format_table(lags: list[PartitionLag]) -> str:
    rows = [("group", "topic", "partition", "committed", "end", "lag")]
    rows += [(x.group, x.topic, str(x.partition), "-" if x.committed is None else str(x.committed), str(x.end),
              str(x.lag)) for x in lags]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))) for row in rows)
