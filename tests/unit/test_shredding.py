"""Crypto-shredding without Kafka: sealing at prepare(), key wrapping, the keyring, the worker's
processor opening sealed events, shredding on an erasure request, and the topic lifetime policy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from core.datakeys import DataKey, MasterKeys, record_key
from core.errors import ConfigError, EventRejected, InvalidMessage
from core.topics import KEYS, TopicPolicy
from producers import ingest
from producers.ingest import Prepared, prepare, split_keys
from producers.keyring import Keyring
from schemas import CATALOGUE
from schemas.agreements import Agreement
from schemas.codec import SchemaEntry
from schemas.sealing import PREFIX, SEALER, sealed_paths
from streams.keystore import KeyStore
from streams.processor import Processor
from streams.steps.consent import LedgerEntry

SUBJECT_KEY = b"s" * 32
EMAIL = "claire.martin@exemple.fr"
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def masters() -> MasterKeys:
    return MasterKeys({1: "master-one-0123456789", 2: "master-two-0123456789"}, current=2)


@pytest.fixture
def keyring(masters: MasterKeys) -> Iterator[Keyring]:
    ring = Keyring(masters, ttl=300)
    ingest.use_keyring(ring)
    yield ring
    ingest.use_keyring(None)


def order(email: str = EMAIL, event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or str(uuid.uuid4()), "type": "ticket.order_placed",
            "occurred_at": "2026-11-01T12:00:00Z",
            "customer": {"email": email, "customer_id": "C-1", "first_name": "Claire", "postal_code": "69003"},
            "order_id": "O1", "production": "Tosca", "performance_id": "P1",
            "performance_at": "2026-12-01T20:00:00Z", "discipline": "opera", "tariff": "plein",
            "channel": "web", "quantity": 1, "amount_minor": 4500, "currency": "EUR"}


def consent(email: str, kind: str = "granted") -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": f"consent.{kind}", "occurred_at": "2026-10-01T12:00:00Z",
            "customer": {"email": email}, "purpose": "marketing", "recipients": ["p1"],
            "recipient_list_version": "1", "proof_ref": "form:test"}


def erasure(email: str) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": "erasure.requested", "occurred_at": "2026-11-02T12:00:00Z",
            "customer": {"email": email}, "request_id": "DPO-1"}


def prep(payload: dict[str, Any]) -> Prepared:
    return prepare(payload, venue_id="v1", subject_key=SUBJECT_KEY, fallback_id=uuid.uuid4(), auth="test")


class Store:
    """The worker's key store fed from the key records the producer emitted (no Kafka)."""

    def __init__(self, masters: MasterKeys) -> None:
        self.inner = KeyStore("unused:9092", masters)

    def feed(self, records: list[Prepared]) -> None:
        for r in split_keys(records)[0]:
            self.inner.apply(r.key, r.value)


def test_prepare_seals_every_direct_field_and_emits_its_key_once(keyring: Keyring) -> None:
    first, second = prep(order()), prep(order())
    assert EMAIL.encode() not in first.value and b"Claire" not in first.value and b"C-1" not in first.value
    assert b"Tosca" in first.value and b"69003" in first.value  # none / quasi fields stay in clear
    _, record = CATALOGUE.decode(first.value)
    assert record["subject"]["email"].startswith(PREFIX) and record["subject"]["first_name"].startswith(PREFIX)
    assert [k.topic for k in first.keys] == [KEYS] and first.keys[0].key.startswith(first.key + b"/")
    assert second.keys == first.keys  # not confirmed durable yet: still attached
    keyring.confirm([first.keys[0].key])
    assert prep(order()).keys == ()


def test_prepare_refuses_to_run_unconfigured() -> None:
    ingest._configured = False
    try:
        with pytest.raises(ConfigError, match="configure"):
            prep(order())
    finally:
        ingest.use_keyring(None)


def test_open_needs_the_subjects_key_and_the_right_event(keyring: Keyring, masters: MasterKeys) -> None:
    p = prep(order())
    store = Store(masters)
    store.feed([p])
    name, record = CATALOGUE.decode(p.value)
    subject = p.key.decode()
    assert SEALER.open(name, record, lambda kid: store.inner.lookup(subject, kid)) is False
    assert record["subject"]["email"] == EMAIL and record["subject"]["first_name"] == "Claire"
    # another subject's key table does not open it: the field is closed (shredded), not leaked
    _, again = CATALOGUE.decode(p.value)
    assert SEALER.open(name, again, lambda kid: store.inner.lookup("someone-else", kid)) is True
    assert again["subject"]["email"] is None
    # a token moved to another event does not authenticate
    _, moved = CATALOGUE.decode(p.value)
    moved["event_id"] = str(uuid.uuid4())
    with pytest.raises(InvalidMessage, match="does not authenticate"):
        SEALER.open(name, moved, lambda kid: store.inner.lookup(subject, kid))


def test_sealed_fields_are_strings_in_every_schema() -> None:
    for name in CATALOGUE.names():
        entry: SchemaEntry = CATALOGUE.entry(name)
        for path in sealed_paths(name):
            avro_type = _field_type(entry.raw, list(path))
            assert avro_type in ("string", ["null", "string"], {"type": "map", "values": "string"}), (name, path)


def _field_type(schema: dict[str, Any], path: list[str]) -> Any:
    named: dict[str, Any] = {}

    def find(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "record":
                named[node["name"]] = node
                for f in node["fields"]:
                    find(f["type"])
            else:
                find(node.get("type")), find(node.get("items"))
        elif isinstance(node, list):
            for n in node:
                find(n)

    find(schema)
    record: Any = schema
    for part in path:
        field = next(f for f in record["fields"] if f["name"] == part)
        t = field["type"]
        if part != path[-1]:
            candidates = [x for x in (t if isinstance(t, list) else [t]) if x != "null"]
            c = candidates[0]
            record = named.get(c.rsplit(".", 1)[-1]) if isinstance(c, str) else c
    return t


def test_wrapped_keys_unwrap_across_master_rotation_and_only_for_their_subject(masters: MasterKeys) -> None:
    key = DataKey.generate("subject-a")
    old = MasterKeys({1: "master-one-0123456789"}, current=1)
    value = old.wrap(key)
    assert json.loads(value)["v"] == 1 and key.secret not in value
    assert masters.unwrap(key.record_key, value).secret == key.secret  # version 1 still configured
    with pytest.raises(InvalidMessage):
        masters.unwrap(record_key("subject-b", key.kid), value)  # moved to another subject
    with pytest.raises(InvalidMessage, match="not configured"):
        MasterKeys({2: "master-two-0123456789"}, current=2).unwrap(key.record_key, value)
    with pytest.raises(ConfigError):
        MasterKeys({1: "short"}, current=1)


def test_keyring_makes_a_new_key_after_its_ttl() -> None:
    now = [0.0]
    ring = Keyring(MasterKeys({1: "master-one-0123456789"}, 1), ttl=10, clock=lambda: now[0])
    first, _ = ring.key_for("s")
    assert ring.key_for("s")[0] is first
    now[0] = 11.0
    assert ring.key_for("s")[0].kid != first.kid and len(ring) == 1


AGREEMENT = Agreement.model_validate({
    "id": "dsa-p1", "provider_venues": ["v1"], "partner": "p1", "purposes": ["marketing"],
    "event_types": ["ticket.order_placed"], "allowed_fields": ["production"], "retention_days": 30,
    "valid_from": date(2026, 1, 1), "valid_until": date(2027, 1, 1)})


def test_processor_opens_shares_then_shreds_on_erasure(keyring: Keyring, masters: MasterKeys) -> None:
    processor = Processor([AGREEMENT], {1: b"k" * 32}, 1)
    store = Store(masters)
    ledger: dict[str, LedgerEntry] = {}
    events = [prep(consent(EMAIL)), prep(order()), prep(consent("autre@exemple.fr")), prep(order("autre@exemple.fr"))]
    store.feed(events)

    def run(p: Prepared) -> Any:
        result = processor.handle(p.value, p.key, "raw.v1", ledger.get, keys=store.inner.lookup)
        if result.ledger_update is not None:
            ledger[p.key.decode()] = result.ledger_update
        return result

    results = [run(p) for p in events]
    assert "partner.p1.ticketing" in [o.topic for o in results[1].outputs]
    wipe = prep(erasure(EMAIL))
    store.feed([wipe])
    erased = run(wipe)
    assert erased.shred is not None and erased.shred.subject == events[1].key.decode()
    assert b'"outcome": "keys_shredded"' in erased.shred.audit.value
    assert any(o.topic == "partner.p1.erasure" for o in erased.outputs)
    for kid in store.inner.kids(erased.shred.subject):  # what KeyStore.shred does, without Kafka
        store.inner.apply(record_key(erased.shred.subject, kid), None)
    # replay from offset zero with a fresh ledger: nothing of hers to any partner, the other person unchanged
    ledger.clear()
    replay = [run(p) for p in [*events, wipe]]
    assert [o.topic for o in replay[1].outputs] == ["techne.audit"]  # no partner, not even the venue's store
    assert b"subject_erased" in replay[1].outputs[0].value
    assert [o.topic for o in replay[3].outputs] == [o.topic for o in results[3].outputs]  # the other person: same
    assert replay[4].shred is None and not [o for o in replay[4].outputs if o.topic != "techne.audit"]


def test_topic_policy_sets_and_checks_lifetimes() -> None:
    policy = TopicPolicy(raw_hours=24, dlq_hours=48, keys_compaction_hours=1, keys_tombstone_hours=24)
    assert policy.configs("raw.v1")["retention.ms"] == str(24 * 3_600_000)
    assert policy.configs("dlq.decode")["retention.ms"] == str(48 * 3_600_000)
    assert policy.configs(KEYS)["cleanup.policy"] == "compact" and policy.configs("techne.audit") == {}
    assert policy.problems("raw.v1", {"cleanup.policy": "delete", "retention.ms": str(24 * 3_600_000)}) == []
    assert "exceeds the bound" in policy.problems("raw.v1", {"cleanup.policy": "delete", "retention.ms": "-1"})[0]
    assert policy.problems("raw.v1", {"cleanup.policy": "compact", "retention.ms": "1"})
    assert policy.problems(KEYS, {"cleanup.policy": "delete", "segment.ms": "1", "max.compaction.lag.ms": "1",
                                  "delete.retention.ms": "1"})


def test_keys_older_than_their_events_can_live_are_forgotten(masters: MasterKeys) -> None:
    store = KeyStore("unused:9092", masters)
    old, new = DataKey("s", b"o" * 16, b"k" * 32, created_at=1000.0), DataKey("s", b"n" * 16, b"k" * 32, 5000.0)
    for key in (old, new):
        store.apply(key.record_key, masters.wrap(key))
    assert store.expired(now=5100.0, max_age=3600.0) == [old.record_key]
    assert store.lookup("s", old.kid) is None and store.lookup("s", new.kid) is not None


def test_spool_keeps_an_events_key_records_and_purges_delivered_entries(keyring: Keyring, tmp_path: Any) -> None:
    from producers.spool import Spool

    spool = Spool(tmp_path / "spool.sqlite")
    first, second = prep(order()), prep(order())
    assert first.keys and first.keys == second.keys
    spool.append([first, second])
    entries = spool.head(10)
    assert [e.record.keys for e in entries] == [first.keys, second.keys]
    keys, events = split_keys([e.record for e in entries])
    assert [k.key for k in keys] == [first.keys[0].key] and [e.event_id for e in events] == [first.event_id,
                                                                                            second.event_id]
    spool.delete([e.seq for e in entries])
    assert spool.depth == 0
    spool.close()
    assert first.value not in (tmp_path / "spool.sqlite").read_bytes()  # secure_delete, WAL truncated


def test_a_key_the_worker_cannot_unwrap_is_a_dead_letter_not_an_erasure(keyring: Keyring) -> None:
    """A worker whose master keys differ from the producers' (or lack an old version) must not
    take every event for an erased person's: they go to dlq.decode (key_unreadable), counted and
    replayable; and an erasure still tombstones those keys (a process that can read them may)."""
    worker_masters = MasterKeys({1: "other-one-0123456789", 2: "other-two-0123456789"}, current=2)
    processor = Processor([AGREEMENT], {1: b"k" * 32}, 1)
    store = Store(worker_masters)
    events = [prep(consent(EMAIL)), prep(order())]
    store.feed(events)
    ledger: dict[str, LedgerEntry] = {}
    results = [processor.handle(p.value, p.key, "raw.v1", ledger.get, keys=store.inner.lookup) for p in events]
    for result in results:
        assert result.invalid and [o.topic for o in result.outputs] == ["dlq.decode"]
        assert dict(result.outputs[0].headers)["techne-reason"] == b"key_unreadable"
        assert b"subject_erased" not in result.outputs[0].value
    (key_record,) = events[0].keys
    subject, kid = events[1].key.decode(), bytes.fromhex(key_record.key.decode().rpartition("/")[2])
    assert store.inner.kids(subject) == [kid]  # what KeyStore.shred tombstones on an erasure request
    store.inner.apply(key_record.key, None)  # its tombstone: then the key is simply shredded
    assert store.inner.kids(subject) == [] and store.inner.lookup(subject, kid) is None


def test_prepare_refuses_an_event_dated_more_than_a_day_after_its_receipt(keyring: Keyring) -> None:
    now = datetime.now(UTC)
    for ahead in (timedelta(hours=2), timedelta(hours=23)):  # venues' clock and time-zone slop
        prep({**order(), "occurred_at": (now + ahead).isoformat()})
    for ahead in (timedelta(hours=25), timedelta(days=365 * 70)):  # its retention would start in the future
        with pytest.raises(EventRejected) as refused:
            prep({**order(), "occurred_at": (now + ahead).isoformat()})
        assert [e["field"] for e in refused.value.errors] == ["occurred_at"]
        assert "24 h" in refused.value.errors[0]["message"]
