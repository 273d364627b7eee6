"""Faust's exactly-once mode (Kafka transactions) against the local broker: the worker's
outputs are written in transactions (read_committed consumers see each once; transaction
markers occupy offsets), and routing gives the same result as in at-least-once mode."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from producers.gateway.signatures import sign
from schemas import CATALOGUE
from streams.topics import bus_topics, ensure_topics
from techne.stack import Stack
from tests.conftest import Bus
from tests.integration.kafka_helpers import end_offsets, read_all

pytestmark = pytest.mark.integration
VENUE, PARTNER = "eos-venue", "eos-partner"


def test_exactly_once_worker_routes_each_event_once_in_transactions(bus: Bus, tmp_path: Path) -> None:
    (tmp_path / "venues.yaml").write_text(f"venues:\n  - id: {VENUE}\n    name: EOS\n")
    agreements = tmp_path / "agreements"
    agreements.mkdir()
    (agreements / "eos.yaml").write_text(
        f"id: dsa-eos\nprovider_venues: [{VENUE}]\npartner: {PARTNER}\npurposes: [research]\n"
        "event_types: [ticket.order_placed]\nallowed_fields: [production]\nretention_days: 30\n"
        "valid_from: 2020-01-01\nvalid_until: 2099-12-31\n")
    asyncio.run(ensure_topics(bus.bootstrap, bus_topics([VENUE], [PARTNER]), 3))
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    env = {**bus.env, "TECHNE_VENUES_FILE": str(tmp_path / "venues.yaml"), "TECHNE_AGREEMENTS_DIR": str(agreements),
           "TECHNE_WORKER_ID": "techne-worker-eos", "TECHNE_EXACTLY_ONCE": "true", "TECHNE_DATA_DIR": str(tmp_path),
           "TECHNE_VENUE_SECRETS": json.dumps({VENUE: [secret]})}
    stack = Stack(env, tmp_path / "logs")
    try:
        url = stack.start_gateway()
        stack.start_worker("eos-worker")
        now = datetime.now(UTC)

        def post(payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode()
            headers = {"content-type": "application/json",
                       **sign(body, secret=secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=time.time())}
            assert httpx.post(f"{url}/v1/venues/{VENUE}/events", content=body, headers=headers).status_code == 202

        emails = [f"eos{i}@exemple.fr" for i in range(10)]
        for email in emails[:5]:
            post({"type": "consent.granted", "occurred_at": (now - timedelta(days=1)).isoformat(),
                  "customer": {"email": email}, "purpose": "research", "recipients": [PARTNER]})
        sent = []
        for i, email in enumerate(emails * 3):
            event_id = str(uuid.uuid4())
            sent.append((event_id, email))
            post({"type": "ticket.order_placed", "event_id": event_id, "occurred_at": now.isoformat(),
                  "customer": {"email": email}, "order_id": f"E{i}", "production": "X", "performance_id": "p",
                  "performance_at": now.isoformat(), "discipline": "autre", "tariff": "plein", "channel": "web",
                  "quantity": 1, "amount_minor": 1})
        expected = {e for e, email in sent if email in emails[:5]}
        topic = f"partner.{PARTNER}.ticketing"
        deadline = time.monotonic() + 90
        got: list[str] = []
        while time.monotonic() < deadline:
            got = [str(CATALOGUE.decode(v)[1]["event_id"])
                   for v in asyncio.run(read_all(bus.bootstrap, topic, "read_committed"))]
            if len(got) >= len(expected):
                break
            time.sleep(1)
        stack.check()
        assert sorted(got) == sorted(expected)
        # transactional writes: commit markers take offsets beyond the records themselves
        assert asyncio.run(end_offsets(bus.bootstrap, [topic]))[topic] > len(got)
        log = (tmp_path / "logs" / "eos-worker.log").read_text()
        assert secret not in log
    finally:
        stack.stop_all()
