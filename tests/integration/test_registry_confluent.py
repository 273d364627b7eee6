"""Proof that a partner's standard client decodes partner topics through our registry API:
framed SharedTicketOrder records on a real broker, read with confluent-kafka's Consumer and
decoded by its AvroDeserializer + SchemaRegistryClient pointed at `schemas.registry_api`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from core.topics import ensure_topics
from schemas.codec import CATALOGUE
from schemas.examples import example_record
from schemas.models import SHARED_TICKET_ORDER
from schemas.registry_api import create_app
from techne.local import LocalKafka
from tests.support.asgi import serving

pytestmark = pytest.mark.integration
PARTNER = "observatoire"


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    with serving(create_app(partners=[PARTNER])) as url:
        yield url


def _records(n: int) -> list[dict]:
    base = example_record(CATALOGUE.entry(SHARED_TICKET_ORDER).raw)
    start = datetime(2026, 11, 14, 9, tzinfo=UTC)
    return [{**base, "event_id": str(uuid.uuid4()), "subject_pseudonym": f"{i:064x}", "quantity": i + 1,
             "occurred_at": start + timedelta(minutes=i), "postal_code": None if i % 2 else "69003"}
            for i in range(n)]


def test_confluent_avro_deserializer_decodes_a_partner_topic(kafka: LocalKafka, registry_url: str) -> None:
    topic = f"partner.{PARTNER}.ticketing-{uuid.uuid4().hex[:8]}"  # a fresh partner-style topic
    asyncio.run(ensure_topics(kafka.bootstrap, [topic], 1))
    sent = _records(25)
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "acks": "all"})
    for record in sent:
        producer.produce(topic, key=record["subject_pseudonym"].encode(),
                         value=CATALOGUE.encode(SHARED_TICKET_ORDER, record))
    assert producer.flush(15) == 0

    client = SchemaRegistryClient({"url": registry_url})
    deserialize = AvroDeserializer(client)
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"partner-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[dict] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < len(sent) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            got.append(deserialize(message.value(), SerializationContext(topic, MessageField.VALUE)))
    finally:
        consumer.close()

    assert len(got) == len(sent)
    by_id = {str(r["event_id"]): r for r in got}
    for record in sent:
        back = by_id[record["event_id"]]
        assert back["subject_pseudonym"] == record["subject_pseudonym"]
        assert back["quantity"] == record["quantity"] and back["postal_code"] == record["postal_code"]
        assert back["occurred_at"] == record["occurred_at"]
    # the client resolved the writer schema by id and sees the same subjects a partner would use
    assert json.loads(client.get_schema(2001).schema_str)["name"] == "SharedTicketOrder"
    latest = CATALOGUE.entry(SHARED_TICKET_ORDER).schema_id
    assert client.get_latest_version(f"partner.{PARTNER}.ticketing-value").schema_id == latest
