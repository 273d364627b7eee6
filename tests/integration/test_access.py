"""Partner and venue isolation on a real broker with SASL/SCRAM and the deny-by-default authorizer.

One broker for the module (``LocalKafka(sasl=True)``); principals are onboarded through
:class:`techne.access.Access` (confluent-kafka's AdminClient) and then act as the partners
and venues would, mostly with aiokafka (what the bus uses) and in two tests with
confluent-kafka's consumer and producer (librdkafka: a client nobody here wrote).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from confluent_kafka import Consumer, Producer
from confluent_kafka import KafkaError as ConfluentError
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr
from typer.testing import CliRunner

from core.kafka_auth import KafkaAuth, aiokafka_kwargs, auth_env, confluent_config
from core.topics import AUDIT, SHARED_STREAMS, bus_topics, erasure_topic, partner_topic
from techne.access import Access, AccessError, Issued, describe_acl
from techne.local import LocalKafka

pytestmark = pytest.mark.integration

VENUES = ["v1", "v2"]
PARTNERS = ["pa", "pb"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(tmp_path_factory.mktemp("kafka-sasl"), sasl=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def access(secured: LocalKafka) -> Access:
    return Access(secured.bootstrap, secured.admin_auth)


@pytest.fixture(scope="module")
def issued(secured: LocalKafka, access: Access) -> dict[str, Issued]:
    """Bus topics created by the super user; partners pa, pb and venues v1, v2 onboarded; one record each."""
    admin = secured.admin_auth
    asyncio.run(_create_topics(secured, admin))
    creds = {p: access.onboard_partner(p, 3) for p in PARTNERS} | {v: access.onboard_venue(v, 3) for v in VENUES}

    async def seed() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, **aiokafka_kwargs(admin))
        await producer.start()
        try:
            for topic in (*(f"partner.{p}.ticketing" for p in PARTNERS), *(f"raw.{v}" for v in VENUES), AUDIT):
                await producer.send_and_wait(topic, topic.encode(), key=b"k")
        finally:
            await producer.stop()

    asyncio.run(seed())
    return creds


async def _create_topics(secured: LocalKafka, admin: KafkaAuth) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    client = AIOKafkaAdminClient(bootstrap_servers=secured.bootstrap, **aiokafka_kwargs(admin))
    await client.start()
    try:
        await client.create_topics([NewTopic(t, 3, 1) for t in bus_topics(VENUES, PARTNERS)])
    finally:
        await client.close()


def auth(i: Issued) -> KafkaAuth:
    return KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", i.username, i.password)


async def consume_one(bootstrap: str, who: KafkaAuth, topic: str, group: str | None) -> bytes:
    """First record of ``topic`` read by ``who`` (with a consumer group, or by assignment when None)."""
    consumer = AIOKafkaConsumer(*([topic] if group else []), bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False, request_timeout_ms=10_000,
                                **aiokafka_kwargs(who))
    try:
        await consumer.start()
        if group is None:
            # a reader without a group first needs the topic's partitions; for a topic the principal may
            # not DESCRIBE, the broker answers TOPIC_AUTHORIZATION_FAILED (aiokafka's producer raises it
            # the same way from partitions_for; the consumer would only log it and retry)
            partitions = await consumer._client._wait_on_metadata(topic)
            consumer.assign([TopicPartition(topic, p) for p in partitions])
        record = await asyncio.wait_for(consumer.getone(), 20)
        if group is not None:
            await consumer.commit()
        return bytes(record.value or b"")
    finally:
        await consumer.stop()


async def produce(bootstrap: str, who: KafkaAuth, topic: str, *, idempotent: bool) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=idempotent, acks="all",
                                request_timeout_ms=10_000, **aiokafka_kwargs(who))
    try:
        await producer.start()
        await asyncio.wait_for(producer.send_and_wait(topic, b"x", key=b"k"), 20)
    finally:
        await producer.stop()


# --- partners -------------------------------------------------------------------------------


def test_partner_reads_its_own_topic_with_its_own_group(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    value = asyncio.run(consume_one(secured.bootstrap, auth(issued["pa"]), "partner.pa.ticketing", "partner.pa.bi"))
    assert value == b"partner.pa.ticketing"


def test_partner_acls_are_exactly_read_and_describe_on_its_prefix(access: Access, issued: dict[str, Issued]) -> None:
    got = sorted(describe_acl(b) for b in access.acls_of("User:partner-pa"))
    assert got == sorted(f"{kind} PREFIXED partner.pa. {op} ALLOW" for kind in ("TOPIC", "GROUP")
                         for op in ("READ", "DESCRIBE"))
    assert sorted(issued["pa"].acls) == got


def test_partner_cannot_read_another_partners_topic(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(consume_one(secured.bootstrap, auth(issued["pa"]), "partner.pb.ticketing", "partner.pa.x"))
    with pytest.raises(TopicAuthorizationFailedError):  # nor by assignment, without a group
        asyncio.run(consume_one(secured.bootstrap, auth(issued["pa"]), "partner.pb.ticketing", None))


def test_partner_group_outside_its_prefix_is_refused(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    for group in ("analytics", "partner.pb.steal", "techne-sink.pa", "techne-worker"):
        with pytest.raises(GroupAuthorizationFailedError):
            asyncio.run(consume_one(secured.bootstrap, auth(issued["pa"]), "partner.pa.ticketing", group))


@pytest.mark.parametrize("topic", ["raw.v1", AUDIT, "dlq.decode", "partner.pb.erasure"])
def test_partner_cannot_read_bus_topics(secured: LocalKafka, issued: dict[str, Issued], topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(consume_one(secured.bootstrap, auth(issued["pa"]), topic, None))


@pytest.mark.parametrize("topic", ["partner.pa.ticketing", "partner.pa.erasure", "raw.v1", AUDIT])
def test_partner_cannot_produce_anywhere(secured: LocalKafka, issued: dict[str, Issued], topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(produce(secured.bootstrap, auth(issued["pa"]), topic, idempotent=False))
    with pytest.raises(ClusterAuthorizationFailedError):  # not even a producer id: it may write nowhere
        asyncio.run(produce(secured.bootstrap, auth(issued["pa"]), topic, idempotent=True))


def test_unknown_or_wrong_credentials_are_rejected(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    wrong = KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", "partner-pa", SecretStr("not-the-password"))
    with pytest.raises(KafkaError):
        asyncio.run(consume_one(secured.bootstrap, wrong, "partner.pa.ticketing", "partner.pa.bi"))
    with pytest.raises(KafkaConnectionError):  # no SASL at all: the listener does not speak PLAINTEXT
        asyncio.run(consume_one(secured.bootstrap, KafkaAuth(), "partner.pa.ticketing", "partner.pa.bi"))


# --- venues ---------------------------------------------------------------------------------


def test_venue_writes_only_its_raw_topic(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    asyncio.run(produce(secured.bootstrap, auth(issued["v1"]), "raw.v1", idempotent=True))
    for topic in ("raw.v2", AUDIT, "partner.pa.ticketing"):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(produce(secured.bootstrap, auth(issued["v1"]), topic, idempotent=False))


@pytest.mark.parametrize("topic", ["raw.v1", "raw.v2", AUDIT, "partner.pa.ticketing"])
def test_venue_cannot_read_anything(secured: LocalKafka, issued: dict[str, Issued], topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(consume_one(secured.bootstrap, auth(issued["v1"]), topic, None))
    with pytest.raises((GroupAuthorizationFailedError, TopicAuthorizationFailedError)):
        asyncio.run(consume_one(secured.bootstrap, auth(issued["v1"]), topic, "venue.v1"))


# --- a client nobody here wrote: librdkafka through confluent-kafka -------------------------------


def _confluent_poll(config: dict[str, str], topic: str, group: str) -> tuple[bytes | None, int | None]:
    """(value, None) for the first record, or (None, error code) for the first error."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": "false"})
    try:
        consumer.subscribe([topic])
        for _ in range(40):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                return None, msg.error().code()
            return msg.value(), None
        raise AssertionError(f"no record and no error on {topic} in 20 s")
    finally:
        consumer.close()


def test_confluent_client_sees_the_same_isolation(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    pa = confluent_config(auth(issued["pa"]), secured.bootstrap)
    assert _confluent_poll(pa, "partner.pa.ticketing", "partner.pa.librdkafka") == (b"partner.pa.ticketing", None)
    # docs/partners.md: a group id outside the partner's prefix fails as a standard client reports it
    assert _confluent_poll(pa, "partner.pa.ticketing", "analytics") == (
        None, ConfluentError.GROUP_AUTHORIZATION_FAILED)
    assert _confluent_poll(pa, "partner.pb.ticketing", "partner.pa.librdkafka2") == (
        None, ConfluentError.TOPIC_AUTHORIZATION_FAILED)
    assert _confluent_poll(pa, AUDIT, "partner.pa.librdkafka3") == (None, ConfluentError.TOPIC_AUTHORIZATION_FAILED)
    # metadata shows the partner its own topics only: the other partners' names stay hidden
    visible = set(AdminClient(pa).list_topics(timeout=10).topics)
    assert "partner.pa.ticketing" in visible
    assert visible == {partner_topic("pa", s) for s in SHARED_STREAMS} | {erasure_topic("pa")}


def test_confluent_producer_of_a_partner_is_refused(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    errors: list[int] = []
    producer = Producer({**confluent_config(auth(issued["pa"]), secured.bootstrap), "enable.idempotence": "false",
                         "message.timeout.ms": "10000"})
    producer.produce("partner.pa.ticketing", b"x", on_delivery=lambda err, _msg: errors.append(err.code()))
    producer.flush(15)
    assert errors == [ConfluentError.TOPIC_AUTHORIZATION_FAILED]


# --- onboarding rules and offboarding ---------------------------------------------------------


def test_onboarding_twice_needs_rotate(access: Access, issued: dict[str, Issued]) -> None:
    with pytest.raises(AccessError, match="--rotate"):
        access.onboard_partner("pa", 3)


def test_ids_that_could_widen_a_prefix_are_refused(access: Access) -> None:
    from core.errors import ConfigError

    for bad in ("pa.", "pa.x", "Pa", "", "a" * 64, "pa*"):
        with pytest.raises(ConfigError):
            access.onboard_partner(bad, 3)


def test_after_offboarding_reads_fail_on_open_and_new_connections(secured: LocalKafka, access: Access) -> None:
    gone = access.onboard_partner("gone", 3)
    topic = "partner.gone.ticketing"

    async def scenario() -> None:
        admin = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, **aiokafka_kwargs(secured.admin_auth))
        await admin.start()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=secured.bootstrap, group_id="partner.gone.bi",
                                    auto_offset_reset="earliest", **aiokafka_kwargs(auth(gone)))
        await consumer.start()
        try:
            await admin.send_and_wait(topic, b"before", key=b"k")
            assert (await asyncio.wait_for(consumer.getone(), 20)).value == b"before"
            assert access.offboard_partner("gone") == (4, True)
            assert access.acls_of("User:partner-gone") == []
            await admin.send_and_wait(topic, b"after", key=b"k")
            with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
                for _ in range(3):  # the open connection: the next fetch or commit is refused
                    await asyncio.wait_for(consumer.getone(), 20)
                    await consumer.commit()
        finally:
            await consumer.stop()
            await admin.stop()

    asyncio.run(scenario())
    with pytest.raises(KafkaError):  # a new connection cannot even authenticate
        asyncio.run(consume_one(secured.bootstrap, auth(gone), topic, "partner.gone.bi"))


def test_cli_prints_the_password_once_and_logs_nothing(secured: LocalKafka, caplog: pytest.LogCaptureFixture,
                                                       tmp_path: Path) -> None:
    from techne.cli import app

    env = {"TECHNE_BOOTSTRAP": secured.bootstrap, "TECHNE_DATA_DIR": str(tmp_path),
           **auth_env(secured.admin_auth)}
    partner = "observatoire"  # onboarding needs a partner of the agreements
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(app, ["partner", "onboard", partner], env=env)
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("password:")]
    password = line.split(":", 1)[1].strip()
    assert len(password) >= 32 and result.output.count(password) == 1
    assert password not in caplog.text
    asyncio.run(produce(secured.bootstrap, secured.admin_auth, f"partner.{partner}.ticketing", idempotent=True))
    who = KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", f"partner-{partner}", SecretStr(password))
    assert asyncio.run(consume_one(secured.bootstrap, who, f"partner.{partner}.ticketing", f"partner.{partner}.x"))

    result = CliRunner().invoke(app, ["partner", "offboard", partner], env=env)
    assert result.exit_code == 0 and "4 ACL" in result.output, result.output


def test_cli_onboarding_prints_no_client_library_noise(secured: LocalKafka, tmp_path: Path) -> None:
    """librdkafka writes its own log lines on the process's stderr (file descriptor 2), e.g. the
    "invalid credentials" of the login checks that run before the broker applied the new
    credentials: the operator must see only our output."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TECHNE_BOOTSTRAP": secured.bootstrap, "TECHNE_DATA_DIR": str(tmp_path),
           **auth_env(secured.admin_auth)}
    try:
        proc = subprocess.run([sys.executable, "-m", "techne.cli", "partner", "onboard", "reseau-danse"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("partner reseau-danse onboarded")
        assert proc.stderr == "", proc.stderr
    finally:
        subprocess.run([sys.executable, "-m", "techne.cli", "partner", "offboard", "reseau-danse"], env=env,
                       capture_output=True, timeout=120, check=False)


def test_faust_credentials_of_the_bus_authenticate(secured: LocalKafka, issued: dict[str, Issued]) -> None:
    """What the worker will hand Faust (broker_credentials), mapped by Faust's own aiokafka driver."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from core.kafka_auth import faust_credentials

    options = {k: v for k, v in credentials_to_aiokafka_auth(faust_credentials(secured.admin_auth)).items()
               if v is not None}

    async def roundtrip() -> bytes:
        producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, enable_idempotence=True, **options)
        await producer.start()
        await producer.send_and_wait("partner.pb.ticketing", b"via-faust-credentials", key=b"k")
        await producer.stop()
        return b"ok"

    assert asyncio.run(roundtrip()) == b"ok"
