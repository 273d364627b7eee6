"""Backup and restore of the consent ledger: the worker's Faust table changelog topic in Kafka.

The ledger (``consent-ledger`` table of :mod:`streams.app`) lives in the compacted topic
``<worker id>-consent-ledger-changelog``, one partition per raw-topic partition (co-partitioned
by subject reference); the worker rebuilds its local table from it on start. :func:`export`
reads every partition from its first to its last offset into a gzip'd JSON-lines file (one
record a line: partition, key, value, timestamp, headers; bytes in base64) whose first line is
a header with the topic, its partition count, the record count and a SHA-256 over the records.
:func:`restore` writes the records back, each to its original partition and in order, into a
topic that is missing (created compacted, with the recorded partition count) or empty, then
reads it back and raises :class:`~techne.backup.BackupMismatch` unless count and SHA-256 match.
Run it with the worker stopped (and, on a new host, before the worker's first start).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from core.errors import ConfigError, Unavailable
from core.kafka_auth import KafkaAuth, aiokafka_kwargs
from core.settings import Settings
from techne.backup import BackupMismatch

TABLE = "consent-ledger"  # streams/app.py


def ledger_topic(settings: Settings) -> str:
    """Faust's changelog topic of the consent ledger: ``<app id>-<table>-changelog``."""
    return f"{settings.worker_id}-{TABLE}-changelog"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _record(msg: Any) -> dict[str, Any]:
    return {"p": msg.partition, "k": _b64(msg.key), "v": _b64(msg.value), "t": msg.timestamp,
            "h": [[k, _b64(v)] for k, v in (msg.headers or [])]}


def _digest(records: list[dict[str, Any]]) -> str:
    sha = hashlib.sha256()
    for r in sorted(records, key=lambda r: r["p"]):  # stable: per-partition order kept
        sha.update(json.dumps([r["p"], r["k"], r["v"], r["h"]], separators=(",", ":")).encode() + b"\n")
    return sha.hexdigest()


async def _partitions(bootstrap: str, auth: KafkaAuth, topic: str) -> int:
    """Partition count of ``topic``; 0 when it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_kwargs(auth))
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            return 0
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def read_topic(bootstrap: str, auth: KafkaAuth, topic: str) -> tuple[int, list[dict[str, Any]]]:
    """``(partition count, every record from the first to the last offset, in offset order per partition)``."""
    count = await _partitions(bootstrap, auth, topic)
    if not count:
        return 0, []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **aiokafka_kwargs(auth))
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, messages in batches.items():
                records.extend(_record(m) for m in messages if m.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return count, records


def _unreachable(bootstrap: str, exc: Exception) -> Unavailable:
    return Unavailable(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}); check TECHNE_BOOTSTRAP")


async def export(settings: Settings, out: Path, topic: str | None = None) -> dict[str, Any]:
    """Write the ledger (or ``topic``) to ``out`` (new file, mode 0600: it holds the identifiers of
    the grants standing); returns the header line (:class:`Unavailable` if Kafka cannot be reached)."""
    try:
        return await _export(settings, out, topic)
    except KafkaError as exc:
        raise _unreachable(settings.bootstrap, exc) from None


async def _export(settings: Settings, out: Path, topic: str | None = None) -> dict[str, Any]:
    topic = topic or ledger_topic(settings)
    count, records = await read_topic(settings.bootstrap, settings.kafka_auth(), topic)
    if not count:
        raise ConfigError(f"topic {topic} does not exist: nothing to back up (is TECHNE_WORKER_ID right?)")
    header = {"topic": topic, "partitions": count, "records": len(records), "sha256": _digest(records)}
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # identifiers in clear: owner only
    with os.fdopen(fd, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for record in records:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    return header


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _read_backup(source: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and records of a file of :func:`export` (:class:`ConfigError` for anything else)."""
    try:
        with gzip.open(source, "rt", encoding="utf-8") as f:
            header = json.loads(f.readline())
            records = [json.loads(line) for line in f]
        if not (isinstance(header, dict) and {"partitions", "records", "sha256"} <= header.keys()
                and all(isinstance(r, dict) and {"p", "k", "v", "t", "h"} <= r.keys() for r in records)):
            raise KeyError("field")
    except (ValueError, KeyError, TypeError, EOFError) as exc:  # JSON, missing fields, a truncated file
        raise ConfigError(f"{source}: not a ledger backup written by `techne backup ledger` "
                          f"({type(exc).__name__})") from None
    return header, records


async def restore(settings: Settings, source: Path, topic: str | None = None) -> dict[str, Any]:
    """Write the backup in ``source`` into this deployment's (missing or empty) ledger topic, or
    ``topic``; verified (module doc). A created topic has replication factor 1: on a multi-broker
    cluster create it first (compacted, RF 3, the backup's partition count). :class:`ConfigError`
    for a file that is not such a backup, :class:`Unavailable` if Kafka cannot be reached."""
    header, records = _read_backup(source)
    try:
        return await _restore(settings, header, records, topic)
    except KafkaError as exc:
        raise _unreachable(settings.bootstrap, exc) from None


async def _restore(settings: Settings, header: dict[str, Any], records: list[dict[str, Any]],
                   topic: str | None) -> dict[str, Any]:
    topic = topic or ledger_topic(settings)
    bootstrap, auth = settings.bootstrap, settings.kafka_auth()
    existing, held = await read_topic(bootstrap, auth, topic)
    if held:
        raise ConfigError(f"topic {topic} already holds {len(held)} records: restore into an empty ledger")
    if existing and existing != header["partitions"]:
        raise ConfigError(f"topic {topic} has {existing} partitions, the backup {header['partitions']}: "
                          "the ledger must keep the raw topics' partition count")
    if not existing:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_kwargs(auth))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, header["partitions"], 1,
                                                topic_configs={"cleanup.policy": "compact"})])
        finally:
            await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                **aiokafka_kwargs(auth))
    await producer.start()
    try:
        for r in records:
            await producer.send(topic, _unb64(r["v"]), key=_unb64(r["k"]), partition=r["p"], timestamp_ms=r["t"],
                                headers=[(k, _unb64(v) or b"") for k, v in r["h"]] or None)
        await producer.flush()
    finally:
        await producer.stop()
    _, written = await read_topic(bootstrap, auth, topic)
    restored = {"topic": topic, "partitions": header["partitions"], "records": len(written), "sha256": _digest(written)}
    if (restored["records"], restored["sha256"]) != (header["records"], header["sha256"]):
        raise BackupMismatch(f"{topic}: restored {restored['records']} records ({restored['sha256'][:12]}), "
                             f"backup recorded {header['records']} ({header['sha256'][:12]})")
    return restored
