"""How each connector brings in a consent, an order and a withdrawal, for the end-to-end tests.

Each flow talks to the running bus the way the venue's own tool would: the vendor's push
payload with its own authentication, a poll of the vendor API (local simulator), a CSV import,
a signed canonical webhook, the preference centre. ``grant_and_order`` returns the event ids of
the orders of a consenting person and of a person who never answered; ``withdraw`` withdraws the
first person's consent through the same source's consent path.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from producers.gateway.preferences import preference_link
from producers.gateway.signatures import sign
from tests.conftest import Bus
from tests.producer_env import SECUTIX_BASIC

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vendors"
PARIS = ZoneInfo("Europe/Paris")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    data.pop("_fixture")
    return data


def iso(at: datetime) -> str:
    return at.astimezone(PARIS).isoformat()


class Flow:
    venue: str
    auth: str  # how the source authenticates, as the audit lines say

    def __init__(self, bus: Bus, tmp: Path) -> None:
        self.bus, self.tmp, self.tag = bus, tmp, uuid.uuid4().hex[:8]
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.person, self.stranger = f"p.{self.tag}@exemple.fr", f"q.{self.tag}@exemple.fr"

    def grant_and_order(self) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    def withdraw(self) -> None:
        raise NotImplementedError


class SecuTixFlow(Flow):
    """ORDER_CLOSED whose contact carries its opt-ins; withdrawal: CONTACT_UPDATED, opt-in false."""

    venue, auth = "opera-lyon", "basic"

    def _push(self, note: dict[str, Any]) -> list[str]:
        basic = "Basic " + base64.b64encode(SECUTIX_BASIC.encode()).decode()
        resp = httpx.post(f"{self.bus.gateway_url}/v1/venues/{self.venue}/sources/secutix",
                          content=json.dumps(note).encode(),
                          headers={"content-type": "application/json", "authorization": basic}, timeout=30)
        assert resp.status_code == 202, resp.text
        return [str(e) for e in resp.json()["event_ids"]]

    def _order(self, email: str, contact: int, opt_in: bool | None) -> list[str]:
        note = fixture("secutix_order_closed_optin.json")
        order = note["order"]
        order["orderId"] = f"{self.tag}{contact}"
        order["closingDate"] = iso(self.now - timedelta(hours=2))
        order["contact"].update(contactNumber=contact, email=email)
        if opt_in is None:
            del order["contact"]["optIns"]
        else:
            for o in order["contact"]["optIns"]:
                o.update(date=iso(self.now - timedelta(hours=2, minutes=1)), value=opt_in)
        ids = self._push(note)
        return ids[1:] if opt_in is not None else ids  # the consent comes first

    def grant_and_order(self) -> tuple[list[str], list[str]]:
        return self._order(self.person, 1, True), self._order(self.stranger, 2, None)

    def withdraw(self) -> None:
        note = fixture("secutix_contact_updated.json")
        note["contact"].update(contactNumber=1, email=self.person, modificationDate=iso(self.now - timedelta(hours=1)))
        note["contact"]["optIns"][0]["date"] = iso(self.now - timedelta(hours=1))
        assert len(self._push(note)) == 1


class CsvFlow(Flow):
    """Consents and orders imported from the venue's spreadsheets (profiles consentements and
    billetterie-fr); withdrawal: a later consent file with a « Retiré » row."""

    venue, auth = "gemeaux", "csv-import"

    def _import(self, name: str, profile: str, text: str) -> dict[str, Any]:
        path = self.tmp / f"{name}.csv"
        path.write_bytes(text.encode("utf-8-sig"))
        proc = subprocess.run([sys.executable, "-m", "techne.cli", "import", "csv", str(path), "--venue", self.venue,
                               "--profile", profile, "--json"], env={**os.environ, **self.bus.env},
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return report

    def _consents(self, name: str, status: str, at: datetime) -> None:
        local = at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
        self._import(name, "consentements", "E-mail;Finalité;Statut;Date;Destinataires;Version de la liste;"
                     f"Lieu de recueil\r\n{self.person};Observatoire;{status};{local};observatoire;2026-09;guichet\r\n")

    def grant_and_order(self) -> tuple[list[str], list[str]]:
        from tests.integration.adapters_helpers import records_with_source

        self._consents("consent-grant", "Accordé", self.now - timedelta(hours=3))
        local = (self.now - timedelta(hours=2)).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
        rows = [f"{self.tag}-{i};{local};;{email};92330;Crowd;CR-1;05/12/2027 19:30;Studio;Danse;Plein;Web;2;44,00"
                for i, email in ((1, self.person), (2, self.stranger))]
        header = ("N° commande;Date de commande;N° client;E-mail;Code postal;Spectacle;Code séance;Date de séance;"
                  "Salle;Genre;Tarif;Canal;Nb places;Montant TTC")
        assert self._import("orders", "billetterie-fr", header + "\r\n" + "\r\n".join(rows) + "\r\n")["sent"] == 2
        found = {r["order_id"]: str(r["event_id"]) for r, _ in records_with_source(self.bus, self.venue,
                                                                                   "csv-billetterie")
                 if str(r.get("order_id", "")).startswith(self.tag)}
        return [found[f"{self.tag}-1"]], [found[f"{self.tag}-2"]]

    def withdraw(self) -> None:
        self._consents("consent-withdraw", "Retiré", self.now - timedelta(hours=1))


class CanonicalFlow(Flow):
    """Signed canonical events (consent and orders); withdrawal: the person's preference centre link."""

    venue, auth = "chaillot", "standard-webhooks"

    def _send(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json",
                   **sign(body, secret=self.bus.venue_secret(self.venue), msg_id=f"msg_{uuid.uuid4().hex}",
                          timestamp=time.time())}
        resp = httpx.post(f"{self.bus.gateway_url}/v1/venues/{self.venue}/events", content=body, headers=headers,
                          timeout=30)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["event_id"])

    def _order(self, email: str, i: int) -> str:
        return self._send({"type": "ticket.order_placed", "occurred_at": iso(self.now - timedelta(hours=2)),
                           "customer": {"email": email}, "order_id": f"{self.tag}-{i}", "production": "Crowd",
                           "performance_id": "CR-1", "performance_at": iso(self.now + timedelta(days=30)),
                           "discipline": "danse", "tariff": "plein", "channel": "web", "quantity": 2,
                           "amount_minor": 4400})

    def grant_and_order(self) -> tuple[list[str], list[str]]:
        self._send({"type": "consent.granted", "occurred_at": iso(self.now - timedelta(hours=3)),
                    "customer": {"email": self.person}, "purpose": "cross_venue_analytics",
                    "recipients": ["observatoire"], "recipient_list_version": "2026-09"})
        return [self._order(self.person, 1)], [self._order(self.stranger, 2)]

    def withdraw(self) -> None:
        link = preference_link(self.bus.env["TECHNE_SUBJECT_KEY"].encode(), self.venue, self.person,
                               self.bus.gateway_url)
        page = httpx.get(link, timeout=30)
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        resp = httpx.post(link, data={"purpose": "cross_venue_analytics", "choice": "withdraw", "csrf": csrf.group(1)},
                          timeout=30)
        assert resp.status_code == 303, resp.text


FLOWS: dict[str, type[Flow]] = {"secutix": SecuTixFlow, "csv": CsvFlow, "canonical": CanonicalFlow}
