"""Consumer lag measured from broker offsets (techne/lag.py) on the real local broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from techne import metrics
from techne.kafka_auth import KafkaAuth
from techne.lag import LagMeter, LagUnavailable, format_table
from techne.local import LocalKafka

pytestmark = pytest.mark.integration


def test_lag_is_end_minus_committed_and_everything_before_a_commit(kafka: LocalKafka) -> None:
    prefix = f"lagtest-{uuid.uuid4().hex[:8]}."
    topic, group = f"{prefix}events", f"lag-{uuid.uuid4().hex[:8]}"

    async def setup() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 2, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        for i in range(10):
            await producer.send_and_wait(topic, b"x", partition=i % 2)
        await producer.stop()

    async def commit(offset: int) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "")})
        await consumer.stop()

    asyncio.run(setup())
    meter = LagMeter(kafka.bootstrap, KafkaAuth(), {group: (prefix,)})
    before = {(x.topic, x.partition): x for x in meter.measure()}
    assert {k: (v.committed, v.lag) for k, v in before.items()} == {(topic, 0): (None, 5), (topic, 1): (None, 5)}

    asyncio.run(commit(3))
    after = {x.partition: x.lag for x in meter.measure()}
    assert after == {0: 2, 1: 5}
    assert "lag" in format_table(meter.measure()).splitlines()[0]

    meter.export()
    value = REGISTRY.get_sample_value("techne_consumer_lag", {"group": group, "topic": topic, "partition": "0"})
    assert value == 2


def test_an_unreachable_broker_is_counted_not_raised() -> None:
    meter = LagMeter("127.0.0.1:1", KafkaAuth(), {"g": ("raw.",)}, timeout=1.0)
    with pytest.raises(LagUnavailable):
        meter.measure()
    before = REGISTRY.get_sample_value("techne_lag_collect_errors_total") or 0.0
    meter.export()
    assert metrics.LAG_ERRORS._value.get() == before + 1
