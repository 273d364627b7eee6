"""Consumer lag measured from broker offsets (techne/lag.py) on the real local broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from core.kafka_auth import KafkaAuth
from core.metrics import LAG
from techne.lag import LagMeter, LagUnavailable, format_table, measure_once
from techne.local import LocalKafka, free_port

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
    groups = {group: (prefix,)}
    before = {(x.topic, x.partition): x for x in asyncio.run(measure_once(kafka.bootstrap, KafkaAuth(), groups))}
    assert {k: (v.committed, v.lag) for k, v in before.items()} == {(topic, 0): (None, 5), (topic, 1): (None, 5)}

    asyncio.run(commit(3))
    after = asyncio.run(measure_once(kafka.bootstrap, KafkaAuth(), groups))
    assert {x.partition: x.lag for x in after} == {0: 2, 1: 5}
    assert "lag" in format_table(after).splitlines()[0]

    async def export() -> None:
        async with LagMeter(kafka.bootstrap, KafkaAuth(), groups) as meter:
            await meter.export()

    asyncio.run(export())
    value = LAG.get_sample_value("techne_consumer_lag", {"group": group, "topic": topic, "partition": "0"})
    assert value == 2


def test_an_unreachable_broker_is_counted_not_raised() -> None:
    async def scenario() -> None:
        async with LagMeter(f"127.0.0.1:{free_port()}", KafkaAuth(), {"g": ("raw.",)}, timeout=1.0) as meter:
            with pytest.raises(LagUnavailable):
                await meter.measure()
            before = LAG.get_sample_value("techne_lag_collect_errors_total") or 0.0
            await meter.export()
            assert LAG.get_sample_value("techne_lag_collect_errors_total") == before + 1

    asyncio.run(scenario())
