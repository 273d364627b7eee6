"""Consent from vendor opt-ins through the real gateway and broker: a HelloAsso order form's
custom field becomes a consent event ahead of its order; an unmapped question is refused (422,
French and English) and writes nothing, and the same delivery goes through once the question is
answered the way the mapping knows; Billetweb custom questions polled from the simulator."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from techne.vendor_sim import VendorSimulator
from tests.conftest import Bus
from tests.integration.adapters_helpers import records_with_source
from tests.integration.connector_flows import fixture
from tests.producer_env import BILLETWEB, HELLOASSO_KEY
from tests.support.kafka import raw_offsets

pytestmark = pytest.mark.integration


def push_helloasso(bus: Bus, note: dict[str, object]) -> httpx.Response:
    body = json.dumps(note, ensure_ascii=False).encode()
    signature = hmac.new(HELLOASSO_KEY.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{bus.gateway_url}/v1/venues/lieu-unique/sources/helloasso", content=body,
                      headers={"content-type": "application/json", "x-ha-signature": signature}, timeout=30)


def test_helloasso_opt_in_precedes_the_order_and_unmapped_question_is_refused(bus: Bus) -> None:
    note = fixture("helloasso_order_optin.json")
    note["data"]["id"] = int(time.time() * 1000)
    note["data"]["payer"]["email"] = email = f"ha.{note['data']['id']}@exemple.fr"
    unknown = json.loads(json.dumps(note, ensure_ascii=False).replace("Régime alimentaire", "Taille de T-shirt"))
    before = raw_offsets(bus)
    refused = push_helloasso(bus, unknown)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["error"] == "unmapped_question" and problem["questions"] == ["Taille de T-shirt"]
    assert "non reliée" in problem["detail"] and "not mapped" in problem["detail_en"]
    assert raw_offsets(bus) == before

    accepted = push_helloasso(bus, note)
    assert accepted.status_code == 202, accepted.text
    consent_id, order_id = accepted.json()["event_ids"]
    mine = {str(r["event_id"]): (r, h) for r, h in records_with_source(bus, "lieu-unique", "helloasso")
            if r["subject"].get("email") == email}
    assert mine[consent_id][0]["event_type"] == "consent.granted"
    assert mine[consent_id][0]["recipients"] == ["observatoire"]
    assert mine[order_id][0]["event_type"] == "ticket.order_paid"
    assert {h["auth"] for _, h in mine.values()} == {"hmac-sha256:x-ha-signature"}


def test_billetweb_custom_question_polled_as_consent(bus: Bus, tmp_path: Path) -> None:
    user, key = BILLETWEB.split(":")
    sim = VendorSimulator(billetweb=(user, key)).start()
    try:
        sim.billetweb_event("812399", "Concert test", "2026-12-05 20:00:00")
        attendee = fixture("billetweb_attendees_optin.json")["response"][0]
        tag = str(time.time_ns())
        attendee = {**attendee, "id": tag, "email": f"bw.{tag}@exemple.fr", "order_email": f"bw.{tag}@exemple.fr"}
        sim.billetweb_attendee("812399", attendee)
        env = {**os.environ, **bus.env, "TECHNE_DATA_DIR": str(tmp_path)}
        proc = subprocess.run([sys.executable, "-m", "techne.cli", "connector", "poll", "billetweb", "--venue", "mixt",
                               "--base-url", sim.billetweb_url, "--once"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    finally:
        sim.stop()
    mine = [r for r, _ in records_with_source(bus, "mixt", "billetweb")
            if r["subject"].get("email") == f"bw.{tag}@exemple.fr"]
    assert sorted(r["event_type"] for r in mine) == ["consent.granted", "ticket.issued"]
