"""The one read path (sinks/reader.py) on the real broker and chDB: a store is read through its
running sink's loopback read server while that sink inserts, writes are refused by the engine
(``readonly = 1``), the token and the row cap hold; with the sink stopped the same call reads
the directory itself."""


from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from core.errors import ReadRefused, StoreUnavailable
from core.settings import Settings
from core.topics import ensure_topics, erasure_topic
from sinks.read_server import endpoint_path
from sinks.reader import open_reader
from sinks.runner import partner_ref, partner_rows, query_store
from techne.local import LocalKafka
from tests.integration.sink_helpers import produce, shared_value, spawn_sink, stop, wait_caught_up, write_agreement

pytestmark = pytest.mark.integration
PARTNER = "reads-live"
TOTAL = 3000


def _count(settings: Settings) -> int:
    ((n,),) = partner_rows(settings, PARTNER, "SELECT count() FROM ticket_orders")
    return int(n)


def test_reads_while_the_sink_inserts_and_writes_are_refused(kafka: LocalKafka, tmp_path: Path) -> None:
    write_agreement(tmp_path / "agreements", PARTNER)
    env = {"TECHNE_BOOTSTRAP": kafka.bootstrap, "TECHNE_DATA_DIR": str(tmp_path),
           "TECHNE_AGREEMENTS_DIR": str(tmp_path / "agreements"), "TECHNE_SINK_BATCH_SECONDS": "0.1",
           "TECHNE_SINK_BATCH_ROWS": "100", "TECHNE_READ_MAX_ROWS": "500",
           "TECHNE_READ_TIMEOUT_S": "1"}
    settings = Settings.model_validate({"data_dir": tmp_path, "agreements_dir": tmp_path / "agreements"})
    topic = f"partner.{PARTNER}.ticketing"
    asyncio.run(ensure_topics(kafka.bootstrap, [topic, erasure_topic(PARTNER)], 3))
    log = tmp_path / "sink.log"
    sink = spawn_sink(PARTNER, env, log)
    endpoint = endpoint_path(settings.partner_store_dir(PARTNER))
    try:
        deadline = time.monotonic() + 60
        while not endpoint.exists() and time.monotonic() < deadline:
            assert sink.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        assert stat.S_IMODE(endpoint.stat().st_mode) == 0o600
        entry = json.loads(endpoint.read_text())
        assert entry["pid"] == sink.pid and entry["token"]

        async def feed() -> None:  # the sink inserts small batches while we read
            for start in range(0, TOTAL, 200):
                await produce(kafka.bootstrap, topic, [shared_value(i) for i in range(start, start + 200)])
                await asyncio.sleep(0.1)

        seen: list[int] = []

        async def read_during() -> None:
            task = asyncio.create_task(feed())
            while not task.done():
                seen.append(await asyncio.to_thread(_count, settings))
                await asyncio.sleep(0.05)
            await task

        asyncio.run(read_during())
        wait_caught_up(kafka.bootstrap, PARTNER, sink, log)
        assert _count(settings) == TOTAL
        assert seen == sorted(seen) and len(set(seen)) >= 3, seen  # counts grew while the sink wrote
        assert seen[0] < TOTAL

        for write in ("INSERT INTO ticket_orders (event_id) VALUES (generateUUIDv4())",
                      "ALTER TABLE ticket_orders DELETE WHERE 1", "DROP TABLE ticket_orders",
                      "TRUNCATE TABLE ticket_orders", "SET readonly = 0",
                      "SELECT count() FROM ticket_orders SETTINGS readonly = 0",
                      "SELECT * FROM file('/etc/passwd', 'LineAsString')"):
            with pytest.raises(ReadRefused):
                partner_rows(settings, PARTNER, write)
        assert _count(settings) == TOTAL  # nothing written or dropped through the read path

        with pytest.raises(StoreUnavailable, match="TOO_MANY_ROWS"):  # the sink's row cap (500)
            partner_rows(settings, PARTNER, "SELECT event_id FROM ticket_orders")
        assert len(partner_rows(settings, PARTNER, "SELECT event_id FROM ticket_orders LIMIT 500")) == 500
        with pytest.raises(StoreUnavailable, match="TIMEOUT_EXCEEDED"):  # the sink's timeout (1 s)
            partner_rows(settings, PARTNER, "SELECT sum(number) FROM numbers(1000000000000)")
        assert "3000" in query_store(settings, PARTNER, "SELECT count() FROM ticket_orders")

        url = f"http://127.0.0.1:{entry['port']}/query"
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = httpx.post(url, json={"sql": "SELECT 1"}, headers=headers)
            assert answer.status_code == 401
        wrong = settings.model_copy(update={"read_token": SecretStr("not-the-token")})
        with pytest.raises(StoreUnavailable, match="401"), open_reader(wrong, partner_ref(wrong, PARTNER)) as r:
            r.query("SELECT 1")
    finally:
        assert stop(sink) == 0, log.read_text()[-3000:]
    assert not endpoint.exists()  # removed at shutdown: readers open the directory themselves
    assert _count(settings) == TOTAL
    with pytest.raises(ReadRefused):
        partner_rows(settings, PARTNER, "DROP TABLE ticket_orders")
    assert _count(settings) == TOTAL
