"""Weezevent poll connector on the real broker, against the local simulator of its API
(techne/vendor_sim.py): api_key + access_token, per-event cursor, idempotent ids, consent from
the participant form's answers, refunds, and an unmapped question that fails the round (in
French and English) without writing anything or moving the cursor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from techne.vendor_sim import VendorSimulator
from tests.conftest import Bus
from tests.integration.adapters_helpers import records_with_source
from tests.producer_env import WEEZEVENT
from tests.support.kafka import raw_offsets

pytestmark = pytest.mark.integration
VENUE = "gemeaux"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vendors"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["response"]


@pytest.fixture
def sim() -> Iterator[VendorSimulator]:
    api_key, token = WEEZEVENT.split(":")
    simulator = VendorSimulator(weezevent=(api_key, token)).start()
    yield simulator
    simulator.stop()


def poll(bus: Bus, sim: VendorSimulator, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **bus.env, "TECHNE_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "techne.cli", "connector", "poll", "weezevent", "--venue", VENUE,
                           "--base-url", sim.weezevent_url, "--once"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return dict(json.loads(line))


def test_weezevent_poll_consent_cursor_refund(bus: Bus, sim: VendorSimulator, tmp_path: Path) -> None:
    (event,) = fixture("weezevent_events.json")["events"]
    sim.weezevent_event(event["id"], event["name"], event["date"]["start"])
    first, second = fixture("weezevent_participants.json")["participants"]
    tag = str(os.getpid())
    first = {**first, "id_participant": int(f"{first['id_participant']}{tag}")}
    second = {**second, "id_participant": int(f"{second['id_participant']}{tag}")}
    for p in (first, second):
        sim.weezevent_participant(event["id"], p, at=time.time() - 600)  # sold ten minutes ago
    before = raw_offsets(bus)["raw.gemeaux"]

    got = report(poll(bus, sim, tmp_path))
    assert (got["fetched"], got["sent"], got["rejected"]) == (4, 4, [])  # 2 consents + 2 tickets
    assert raw_offsets(bus)["raw.gemeaux"] == before + 4
    cursor = json.loads((tmp_path / "connectors" / "gemeaux-weezevent.json").read_text())
    assert set(cursor) == {str(event["id"])}
    mine = [(r, h) for r, h in records_with_source(bus, VENUE, "weezevent")
            if str(r.get("ticket_id", "")).endswith(tag) or (r.get("source_system") == "weezevent"
            and r["event_type"].startswith("consent.") and r["subject"]["email"] == "nora.lefevre@exemple.fr")]
    kinds = Counter((r["event_type"], r.get("purpose"), h["auth"]) for r, h in mine)
    auth = "poll:weezevent:api-key+access-token"
    assert kinds[("ticket.issued", None, auth)] == 2
    assert kinds[("consent.granted", "cross_venue_analytics", auth)] >= 1
    assert kinds[("consent.withdrawn", "marketing", auth)] >= 1
    assert all(call[1].get("access_token") for call in sim.calls)

    assert report(poll(bus, sim, tmp_path))["sent"] == 0  # nothing changed since the cursor
    assert sim.calls[-1][1].get("last_update")

    sim.weezevent_participant(event["id"], {**second, "deleted": True})  # refunded in Weezevent
    third = report(poll(bus, sim, tmp_path))
    assert third["sent"] == 2  # the same ticket.issued id again, and its refund
    refunds = [r for r, _ in records_with_source(bus, VENUE, "weezevent")
               if r["event_type"] == "ticket.order_refunded" and r["ticket_ids"] == [str(second["id_participant"])]]
    assert len(refunds) == 1 and refunds[0]["amount_minor"] == 1800

    ids = Counter(str(r["event_id"]) for r, _ in records_with_source(bus, VENUE, "weezevent")
                  if r.get("ticket_id") == str(second["id_participant"]))
    assert len(ids) == 1  # polled twice, one id


def test_weezevent_unmapped_question_fails_the_round(bus: Bus, sim: VendorSimulator, tmp_path: Path) -> None:
    sim.weezevent_event(2470099, "Soirée test", "2026-12-20 20:00:00")
    sim.weezevent_participant(2470099, {"id_participant": 99001, "barcode": "WZ99001", "ticket_name": "Tarif plein",
                                        "price": "10.00", "owner": {"email": "x@exemple.fr"},
                                        "answers": [{"label": "Taille de T-shirt", "value": "M"}]})
    before = raw_offsets(bus)["raw.gemeaux"]
    proc = poll(bus, sim, tmp_path)
    assert proc.returncode != 0
    assert "Taille de T-shirt" in proc.stderr and "non reliée" in proc.stderr and "not mapped" in proc.stderr
    assert raw_offsets(bus)["raw.gemeaux"] == before
    assert not (tmp_path / "connectors" / "gemeaux-weezevent.json").exists()


def test_weezevent_wrong_token_is_a_clear_error(bus: Bus, tmp_path: Path) -> None:
    simulator = VendorSimulator(weezevent=("other", "credentials")).start()
    try:
        proc = poll(bus, simulator, tmp_path)
    finally:
        simulator.stop()
    assert proc.returncode != 0 and "weezevent API refused the request: HTTP 401" in proc.stderr
    assert WEEZEVENT.split(":")[1] not in proc.stderr + proc.stdout
