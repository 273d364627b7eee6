"""The spool and the webhook ledger on their real SQLite files (no Kafka needed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from producers.ingest import Prepared
from producers.ledger import WebhookLedger
from producers.spool import Spool, SpoolFull


def rec(i: int) -> Prepared:
    return Prepared("raw.mixt", b"k%d" % i, b"v%d" % i, f"id-{i}", "ticket.order_placed", "mixt", "test")


def test_order_capacity_and_persistence(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_events=5)
    spool.reserve(3)
    assert spool.append([rec(1), rec(2), rec(3)]) == [1, 2, 3]
    spool.release(3)
    spool.reserve(2)
    with pytest.raises(SpoolFull):
        spool.reserve(1)  # 3 stored + 2 reserved
    spool.release(2)
    spool.append([rec(4)], in_flight=True, watermarks={("raw.mixt", 0): 7})
    spool.close()

    again = Spool(tmp_path / "spool.sqlite", max_events=5)  # a restart
    assert again.depth == 4
    head = again.head(10)
    assert [e.record.event_id for e in head] == ["id-1", "id-2", "id-3", "id-4"]
    assert [e.in_flight for e in head] == [False, False, False, True]
    assert head[0].record == rec(1)
    assert again.watermarks() == {("raw.mixt", 0): 7}
    again.mark_in_flight([1, 2], {("raw.mixt", 0): 5, ("raw.mixt", 1): 3})
    assert again.watermarks() == {("raw.mixt", 0): 7, ("raw.mixt", 1): 3}  # never moves back
    again.delete([1, 2, 99])
    assert again.depth == 2 and [e.seq for e in again.head(10)] == [3, 4]
    assert again.oldest_age() >= 0


def test_ledger_answers_within_ttl_and_across_reopen(tmp_path: Path) -> None:
    ledger = WebhookLedger(tmp_path / "w.sqlite", ttl=300)
    assert ledger.get("opera-lyon", "msg_1") is None
    ledger.put("opera-lyon", "msg_1", {"status": "accepted", "event_id": "e1"})
    ledger.close()
    reopened = WebhookLedger(tmp_path / "w.sqlite", ttl=300)
    assert reopened.get("opera-lyon", "msg_1") == {"status": "accepted", "event_id": "e1"}
    assert reopened.get("chaillot", "msg_1") is None  # per source
    reopened._db.execute("UPDATE accepted SET accepted_at = ?", (time.time() - 301,))
    assert reopened.get("opera-lyon", "msg_1") is None
    assert reopened.prune() == 1


def test_ledger_claim_serializes_one_id(tmp_path: Path) -> None:
    ledger = WebhookLedger(tmp_path / "w.sqlite")
    seen: list[object] = []

    async def deliver(n: int) -> None:
        async with ledger.claim("mixt", "msg_x") as earlier:
            seen.append(earlier)
            await asyncio.sleep(0.01)
            if earlier is None:
                ledger.put("mixt", "msg_x", {"n": n})

    async def main() -> None:
        await asyncio.gather(*(deliver(n) for n in range(5)))

    asyncio.run(main())
    assert seen[0] is None and all(s == {"n": 0} for s in seen[1:])
    assert not ledger._locks
