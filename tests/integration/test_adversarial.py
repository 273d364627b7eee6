"""At least 1,000 generated hostile inputs against the real gateway and worker.

Forged, stale, future-dated and replayed webhooks; tampered bodies; oversized bodies; invalid
JSON; schema-invalid and type-confused events; unknown venues; wrong content types; poison
bytes and schema-incompatible records written straight to a raw topic. For every case:
sent = accepted + rejected (4xx with a reason) + dead-lettered; never a 5xx; never a forged or
replayed event accepted; and the partition keeps flowing (a valid event sent last is decided).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from core.topics import raw_topic
from producers.gateway.signatures import sign
from schemas import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from streams import dlq
from techne.accounting import collect_audit
from tests.conftest import Bus
from tests.integration.kafka_helpers import end_offsets
from tests.support.events import order_payload

pytestmark = pytest.mark.integration
FORGED = "whsec_" + "Rk9SR0VERk9SR0VERk9SR0VERk9SR0VE"
VENUE = "lieu-unique"


def _case(rng: random.Random, bus: Bus, i: int) -> tuple[str, str, bytes, dict[str, str], bool]:
    """(kind, venue, body, headers, may_be_accepted)."""
    payload = order_payload("chloe", i)
    body = json.dumps(payload).encode()
    secret = bus.venue_secret(VENUE)
    now = time.time()
    kind = rng.choice(["forged", "stale", "future", "tampered", "oversized", "invalid_json", "schema_invalid",
                       "type_confused", "unknown_venue", "content_type", "missing_headers", "garbage_signature"])
    venue = VENUE
    headers = sign(body, secret=secret, msg_id=f"msg_adv_{i}", timestamp=now)
    if kind == "forged":
        headers = sign(body, secret=FORGED, msg_id=f"msg_adv_{i}", timestamp=now)
    elif kind == "stale":
        headers = sign(body, secret=secret, msg_id=f"msg_adv_{i}", timestamp=now - rng.randint(301, 10**6))
    elif kind == "future":
        headers = sign(body, secret=secret, msg_id=f"msg_adv_{i}", timestamp=now + rng.randint(301, 10**6))
    elif kind == "tampered":
        body = body.replace(b'"quantity": 2', b'"quantity": 200')
    elif kind == "oversized":
        body = json.dumps({**payload, "production": "x" * rng.randint(1_100_000, 1_300_000)}).encode()
        headers = sign(body, secret=secret, msg_id=f"msg_adv_{i}", timestamp=now)
    elif kind == "invalid_json":
        cut = rng.randint(1, len(body) - 2)
        body = body[:cut] + rng.choice([b"{", b"\xff", b",,", b"]"])
        if b"\xff" not in body and rng.random() < 0.9:  # the reference signer only takes text
            headers = sign(body, secret=secret, msg_id=f"msg_adv_{i}", timestamp=now)
    elif kind in ("schema_invalid", "type_confused"):
        field = rng.choice(["quantity", "occurred_at", "discipline", "customer", "type", "amount_minor", "currency"])
        value = rng.choice([None, "deux", -5, [], {}, "2026-13-45", True, 10**30, "jazz"])
        body = json.dumps({**payload, field: value}).encode()
        headers = sign(body, secret=secret, msg_id=f"msg_adv_{i}", timestamp=now)
    elif kind == "unknown_venue":
        venue = f"nowhere-{i}"
    elif kind == "missing_headers":
        dropped = rng.choice(sorted(headers))
        headers = {k: v for k, v in headers.items() if k != dropped}
    elif kind == "garbage_signature":
        headers = {**headers, "webhook-signature": rng.choice(["v1,", "v1,AAAA", "garbage", "v2,abc", ""])}
    headers = {"content-type": "text/plain" if kind == "content_type" else "application/json", **headers}
    may = kind in ("schema_invalid", "type_confused")  # some values happen to stay valid (e.g. type=…)
    return kind, venue, body, headers, may


async def _send(bus: Bus, cases: list[tuple[str, str, bytes, dict[str, str], bool]]) -> list[tuple[str, int, Any]]:
    sem = asyncio.Semaphore(16)
    out: list[tuple[str, int, Any]] = []
    async with httpx.AsyncClient(timeout=30.0) as client:
        async def one(case: tuple[str, str, bytes, dict[str, str], bool]) -> None:
            kind, venue, body, headers, _ = case
            async with sem:
                resp = await client.post(f"{bus.gateway_url}/v1/venues/{venue}/events", content=body, headers=headers)
            out.append((kind, resp.status_code, resp.json()))
        await asyncio.gather(*(one(c) for c in cases))
    return out


def test_a_thousand_hostile_inputs(worker: Bus) -> None:
    bus = worker
    rng = random.Random(20261129)
    topic = raw_topic(VENUE)
    before = asyncio.run(end_offsets(bus.bootstrap, [topic]))[topic]
    cases = [_case(rng, bus, i) for i in range(1000)]
    answers = asyncio.run(_send(bus, cases))
    statuses = [s for _, s, _ in answers]
    assert not [s for s in statuses if s >= 500], "never a 5xx"
    accepted = [(k, b) for k, s, b in answers if s == 202]
    assert all(k in ("schema_invalid", "type_confused") for k, _ in accepted), \
        f"no forged/stale/tampered accepted: {sorted({k for k, _ in accepted})}"
    rejected = [(k, s, b) for k, s, b in answers if 400 <= s < 500]
    assert all(b.get("error") and b.get("detail") is not None for _, _, b in rejected), "every 4xx has a reason"
    assert len(accepted) + len(rejected) == len(cases)

    # replays of an accepted webhook: answered again, nothing new on the topic
    body = json.dumps(order_payload("chloe", 10_001)).encode()
    headers = {"content-type": "application/json",
               **sign(body, secret=bus.venue_secret(VENUE), msg_id="msg_adv_replay", timestamp=time.time())}
    first = httpx.post(f"{bus.gateway_url}/v1/venues/{VENUE}/events", content=body, headers=headers, timeout=30)
    assert first.status_code == 202
    mid = asyncio.run(end_offsets(bus.bootstrap, [topic]))[topic]
    for _ in range(20):
        again = httpx.post(f"{bus.gateway_url}/v1/venues/{VENUE}/events", content=body, headers=headers, timeout=30)
        assert again.status_code == 202 and again.json()["event_id"] == first.json()["event_id"]
    assert asyncio.run(end_offsets(bus.bootstrap, [topic]))[topic] == mid, "replays produce nothing"
    assert mid == before + len(accepted) + 1, "only accepted events reached the raw topic"

    # poison bytes and a schema-incompatible record straight on the raw topic: dead-lettered
    marker = uuid.uuid4().hex.encode()
    incompatible_id = str(uuid.uuid4())
    shared = CATALOGUE.encode(SHARED_TICKET_ORDER, {
        "event_id": incompatible_id, "event_type": "ticket.order_placed", "occurred_at": 0, "received_at": 0,
        "venue_id": VENUE, "agreement_id": "x", "purpose": "research", "subject_pseudonym": "p" * 64,
        "pseudonym_key_version": 1})
    poison = [marker + bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))) for _ in range(30)]

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bus.bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            for value in poison:
                await producer.send_and_wait(topic, value=value, key=b"poison")
            await producer.send_and_wait(topic, value=shared, key=b"incompatible")
        finally:
            await producer.stop()

    letters_before = len(asyncio.run(dlq.read(bus.bootstrap, "decode")))
    asyncio.run(produce())
    # no partition stalls: a valid event sent after all of it is decided by the worker
    last = httpx.post(f"{bus.gateway_url}/v1/venues/{VENUE}/events",
                      content=(b := json.dumps(order_payload("chloe", 10_002)).encode()),
                      headers={"content-type": "application/json",
                               **sign(b, secret=bus.venue_secret(VENUE), msg_id="msg_adv_last",
                                      timestamp=time.time())}, timeout=30)
    assert last.status_code == 202
    assert last.json()["event_id"] in asyncio.run(collect_audit(bus.bootstrap, {last.json()["event_id"]}, 60))
    letters = asyncio.run(dlq.read(bus.bootstrap, "decode"))
    mine = [d for d in letters if marker in d.value]
    assert len(mine) == len(poison), "every poison record dead-lettered with its reason"
    assert all(d.headers.get("techne-reason") for d in mine)
    assert len(letters) >= letters_before + len(poison)
    # the schema-incompatible record (a partner-facing schema on a raw topic) is audited, never shared
    decisions = asyncio.run(collect_audit(bus.bootstrap, {incompatible_id}, 60))[incompatible_id]
    assert {d["outcome"] for d in decisions} == {"no_agreement"}
