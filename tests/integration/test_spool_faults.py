"""The durable spool on the real broker (issue 4's proof): with Kafka stopped, 1,000 signed
events are all answered 202; once it is back every one reaches the raw topics exactly once by
``event_id``; the same holds when the gateway is SIGKILLed in the middle of a replay.

This module runs its own broker (it stops and restarts it) and its own gateway.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from core.settings import DEFAULT_VENUES
from core.topics import bus_topics, ensure_topics, raw_topic
from core.venues import load_venues
from producers.gateway.signatures import sign
from schemas import CATALOGUE
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets
from techne.traffic import Outgoing, generate
from tests.integration.gateway_helpers import signed_post
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.integration
VENUES = sorted(load_venues(DEFAULT_VENUES))


class Rig:
    def __init__(self, root: Path) -> None:
        self.kafka = LocalKafka(root / "kafka")
        self.kafka.start()
        asyncio.run(ensure_topics(self.kafka.bootstrap, bus_topics(VENUES, []), 3))
        self.env = {**generate_secrets(VENUES), "TECHNE_BOOTSTRAP": self.kafka.bootstrap,
                    "TECHNE_DATA_DIR": str(root / "data"), "TECHNE_SPOOL_DEADLINE_S": "1",
                    "TECHNE_PRODUCE_TIMEOUT_S": "5", "TECHNE_SPOOL_REPLAY_BATCH": "10"}
        self.stack = Stack(self.env, root / "logs")
        self.url = self.stack.start_gateway()
        self.port = int(self.url.rsplit(":", 1)[1])
        self.secrets = {v: s[0] for v, s in json.loads(self.env["TECHNE_VENUE_SECRETS"]).items()}

    def depth(self) -> int:
        return int(httpx.get(self.url + "/healthz", timeout=5).json()["spool_depth"])

    def send(self, events: list[Outgoing]) -> list[int]:
        with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=32)) as client:
            def one(ev: Outgoing) -> int:
                body = json.dumps(ev.payload).encode()
                headers = {"content-type": "application/json", **sign(body, secret=self.secrets[ev.venue_id],
                                                                      msg_id=ev.webhook_id, timestamp=time.time())}
                return client.post(f"{self.url}/v1/venues/{ev.venue_id}/events", content=body,
                                   headers=headers).status_code

            with ThreadPoolExecutor(32) as pool:
                return list(pool.map(one, events))

    def on_topics(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for venue in VENUES:
            for value in asyncio.run(read_all(self.kafka.bootstrap, raw_topic(venue))):
                counts[str(CATALOGUE.decode(value)[1]["event_id"])] += 1
        return counts

    def wait_drained(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.depth() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.depth() == 0, self.stack.log_tail("gateway")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = Rig(tmp_path_factory.mktemp("spool"))
    try:
        yield r
    finally:
        r.stack.stop_all()
        r.kafka.stop()


def _events(n: int, seed: int) -> list[Outgoing]:
    return generate(n, seed=seed, invalid_share=0.0)


def test_broker_down_1000_events_all_202_then_exactly_once(rig: Rig) -> None:
    events = _events(1000, seed=11)
    rig.kafka.stop()
    try:
        statuses = rig.send(events)
        assert Counter(statuses) == {202: 1000}
        assert rig.depth() == 1000
    finally:
        rig.kafka.start()
    rig.wait_drained()
    counts = rig.on_topics()
    wrong = [(ev.payload["event_id"], counts[ev.payload["event_id"]]) for ev in events
             if counts[ev.payload["event_id"]] != 1]
    assert not wrong, wrong[:5]


def test_gateway_killed_in_the_middle_of_a_replay(rig: Rig) -> None:
    events = _events(2000, seed=12)
    rig.kafka.stop()
    try:
        assert Counter(rig.send(events)) == {202: 2000}
    finally:
        rig.kafka.start()
    deadline = time.monotonic() + 60
    while (depth := rig.depth()) > 1900 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert 0 < depth <= 1900, "the replay did not start, or finished before the gateway could be killed"
    rig.stack.kill("gateway")
    with sqlite3.connect(Path(rig.env["TECHNE_DATA_DIR"]) / "gateway" / "spool.sqlite") as db:
        left, in_flight = db.execute("SELECT count(*), coalesce(sum(in_flight), 0) FROM spool").fetchone()
    rig.stack.start_gateway(port=rig.port)
    rig.wait_drained()
    metrics = httpx.get(rig.url + "/metrics/").text
    reconciled = re.search(r"^techne_spool_reconciled_total (\S+)$", metrics, re.MULTILINE)
    print(f"killed with {left} spooled, {in_flight} in flight; reconciled after restart: "
          f"{reconciled.group(1) if reconciled else '?'}")
    counts = rig.on_topics()
    wrong = [(ev.payload["event_id"], counts[ev.payload["event_id"]]) for ev in events
             if counts[ev.payload["event_id"]] != 1]
    assert not wrong, wrong[:5]
    assert max(counts.values()) == 1  # nothing from the first test was duplicated either


def test_full_spool_answers_503_with_retry_after_and_writes_nothing(rig: Rig, tmp_path: Path) -> None:
    small = Stack({**rig.env, "TECHNE_DATA_DIR": str(tmp_path / "data"), "TECHNE_SPOOL_MAX_EVENTS": "5"},
                  tmp_path / "logs")
    url = small.start_gateway()
    events = _events(20, seed=13)[:8]
    venue = events[0].venue_id
    batch_body = json.dumps([ev.payload for ev in _events(20, seed=14)[:3]]).encode()
    rig.kafka.stop()
    try:
        answers = [signed_post(f"{url}/v1/venues/{ev.venue_id}/events", json.dumps(ev.payload).encode(),
                               rig.secrets[ev.venue_id], msg_id=ev.webhook_id, timeout=60) for ev in events]
        batch = signed_post(f"{url}/v1/venues/{venue}/events/batch", batch_body, rig.secrets[venue], timeout=60)
    finally:
        rig.kafka.start()
    assert [a.status_code for a in answers] == [202] * 5 + [503] * 3
    assert answers[-1].headers["retry-after"] == "5" and answers[-1].json()["error"] == "spool_full"
    assert batch.status_code == 503  # the whole batch, not the 0 events that would still fit
    deadline = time.monotonic() + 120
    while httpx.get(url + "/healthz").json()["spool_depth"] and time.monotonic() < deadline:
        time.sleep(0.2)
    small.stop_all()
    counts = rig.on_topics()
    assert [counts[ev.payload["event_id"]] for ev in events] == [1] * 5 + [0] * 3
    assert all(counts[p["event_id"]] == 0 for p in json.loads(batch_body))
