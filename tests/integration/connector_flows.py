"""How each connector brings in a consent, an order and a withdrawal, for the end-to-end tests.

Each flow talks to the running bus the way the venue's own tool would: the vendor's push
payload with its own authentication, a poll of the vendor API (local simulator), a CSV import,
a signed canonical webhook, the preference centre. ``grant_and_order`` returns the event ids of
the orders of a consenting person and of a person who never answered; ``withdraw`` withdraws the
first person's consent through the same source's consent path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
from producers.ingest import derived_event_id
from tests.conftest import Bus
from tests.producer_env import HELLOASSO_KEY, SECUTIX_BASIC

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vendors"
PARIS = ZoneInfo("Europe/Paris")
HA_QUESTION = "J'accepte que mes réservations soient partagées avec l'Observatoire des publics"
BW_QUESTION = "Partage avec l'Observatoire des publics (statistiques)"
WZ_QUESTION = "J'accepte le partage avec l'Observatoire des publics"


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

    def refund(self) -> None:
        """Refund the consenting person's order through the source (before the withdrawal)."""
        raise NotImplementedError

    def withdraw(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop what the flow started (a vendor API simulator)."""


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

    def refund(self) -> None:
        order = fixture("secutix_order_closed_optin.json")["order"]
        note = {"notificationType": "ORDER_REFUNDED", "order": {
            "orderId": f"{self.tag}1", "refundDate": iso(self.now - timedelta(minutes=90)), "currency": "EUR",
            "contact": {"contactNumber": 1, "email": self.person}, "items": order["items"]}}
        assert len(self._push(note)) == 2  # one refund per performance of the order

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

    def refund(self) -> None:
        local = (self.now - timedelta(minutes=90)).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
        report = self._import("refunds", "remboursements-fr", "N° commande;Date du remboursement;E-mail;"
                              f"Montant remboursé;Mode;Motif\r\n{self.tag}-1;{local};{self.person};44,00;Carte;"
                              "Demande du client\r\n")
        assert report["sent"] == 1

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

    def refund(self) -> None:
        self._send({"type": "ticket.order_refunded", "occurred_at": iso(self.now - timedelta(minutes=90)),
                    "customer": {"email": self.person}, "order_id": f"{self.tag}-1", "amount_minor": 4400,
                    "currency": "EUR", "refund_method": "original_payment", "reason": "customer_request"})

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


class HelloAssoFlow(Flow):
    """Order notifications whose form carries the opt-in custom field; refund: a ``Payment``
    notification in state ``Refunded``; withdrawal: a later order answered « Non »."""

    venue, auth = "lieu-unique", "hmac-sha256:x-ha-signature"

    def _push(self, note: dict[str, Any]) -> list[str]:
        body = json.dumps(note, ensure_ascii=False).encode()
        signature = hmac.new(HELLOASSO_KEY.encode(), body, hashlib.sha256).hexdigest()
        resp = httpx.post(f"{self.bus.gateway_url}/v1/venues/{self.venue}/sources/helloasso", content=body,
                          headers={"content-type": "application/json", "x-ha-signature": signature}, timeout=30)
        assert resp.status_code == 202, resp.text
        return [str(e) for e in resp.json()["event_ids"]]

    def _order(self, email: str, n: int, answer: str | None, at: datetime) -> list[str]:
        note = fixture("helloasso_order_optin.json")
        data = note["data"]
        data.update(id=int(f"{int(self.tag, 16) % 10**8}{n}"), date=iso(at))
        data["payer"]["email"] = email
        for item in data["items"]:
            item["customFields"] = [] if answer is None else [
                {"id": 7101, "name": HA_QUESTION, "type": "YesNo", "answer": answer}]
        return self._push(note)

    def grant_and_order(self) -> tuple[list[str], list[str]]:
        consented = self._order(self.person, 1, "Oui", self.now - timedelta(hours=2))[1:]
        return consented, self._order(self.stranger, 2, None, self.now - timedelta(hours=2))

    def refund(self) -> None:
        oid = int(f"{int(self.tag, 16) % 10**8}1")
        note = {"eventType": "Payment", "data": {"id": oid + 7, "state": "Refunded", "amount": 3600,
                                                 "date": iso(self.now - timedelta(minutes=90)), "order": {"id": oid},
                                                 "payer": {"email": self.person}}}
        assert len(self._push(note)) == 1

    def withdraw(self) -> None:
        self._order(self.person, 3, "Non", self.now - timedelta(hours=1))


class PollFlow(Flow):
    """A polled vendor (Billetweb, Weezevent) served by the local simulator: the opt-in answer on the
    ticket; refund: the ticket cancelled in the vendor; withdrawal: the answer changed to « Non »."""

    source = ""

    def __init__(self, bus: Bus, tmp: Path) -> None:
        from techne.vendor_sim import VendorSimulator

        super().__init__(bus, tmp)
        user, key = json.loads(bus.env["TECHNE_SOURCE_SECRETS"])[self.venue][self.source][0].split(":", 1)
        self.sim = VendorSimulator(**{self.source: (user, key)}).start()
        self.ids = {"p": f"{int(self.tag, 16) % 10**7}1", "q": f"{int(self.tag, 16) % 10**7}2"}

    def close(self) -> None:
        self.sim.stop()

    def poll(self) -> None:
        url = self.sim.billetweb_url if self.source == "billetweb" else self.sim.weezevent_url
        proc = subprocess.run([sys.executable, "-m", "techne.cli", "connector", "poll", self.source, "--venue",
                               self.venue, "--base-url", url, "--once"],
                              env={**os.environ, **self.bus.env, "TECHNE_DATA_DIR": str(self.tmp)},
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr

    def ticket(self, who: str, answer: str | None, cancelled: bool = False, at: float | None = None) -> None:
        raise NotImplementedError

    def grant_and_order(self) -> tuple[list[str], list[str]]:
        past = time.time() - 600
        self.ticket("p", "Oui", at=past)
        self.ticket("q", None, at=past)
        self.poll()
        key = "attendee:{}:issued" if self.source == "billetweb" else "participant:{}:issued"
        return ([str(derived_event_id(self.venue, self.source, key.format(self.ids["p"])))],
                [str(derived_event_id(self.venue, self.source, key.format(self.ids["q"])))])

    def refund(self) -> None:
        self.ticket("p", "Oui", cancelled=True, at=time.time() - 2)
        self.poll()

    def withdraw(self) -> None:
        self.ticket("p", "Non", cancelled=True, at=time.time())
        self.poll()


class BilletwebFlow(PollFlow):
    venue, source, auth = "mixt", "billetweb", "poll:billetweb:api-key"

    def ticket(self, who: str, answer: str | None, cancelled: bool = False, at: float | None = None) -> None:
        event = "bw-" + self.tag
        if event not in self.sim.billetweb_events:
            self.sim.billetweb_event(event, "Concert test", "2027-01-20 20:00:00")
        email = self.person if who == "p" else self.stranger
        ordered = (self.now - timedelta(hours=2)).astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
        attendee: dict[str, Any] = {"id": self.ids[who], "barcode": f"BW{self.ids[who]}", "used": "0",
                                    "email": email, "firstname": "Test", "name": "Test", "ticket": "Tarif plein",
                                    "category": "Placement libre", "price": "12.00", "order_id": f"o{self.ids[who]}",
                                    "order_email": email, "order_date": ordered, "disabled": "1" if cancelled else "0"}
        if answer is not None:
            attendee["custom_order"] = {BW_QUESTION: answer}
        self.sim.billetweb_attendee(event, attendee, at=at)


class WeezeventFlow(PollFlow):
    venue, source, auth = "gemeaux", "weezevent", "poll:weezevent:api-key+access-token"

    def ticket(self, who: str, answer: str | None, cancelled: bool = False, at: float | None = None) -> None:
        event = int(self.ids["p"])
        if str(event) not in self.sim.weezevent_events:
            self.sim.weezevent_event(event, "Gala test", "2027-01-20 20:30:00")
        email = self.person if who == "p" else self.stranger
        created = (self.now - timedelta(hours=2)).astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
        participant: dict[str, Any] = {
            "id_participant": int(self.ids[who]), "barcode": f"WZ{self.ids[who]}", "ticket_name": "Tarif plein",
            "price": "28.00", "id_transaction": int(self.ids[who]) * 10, "create_date": created, "paid": True,
            "deleted": cancelled, "owner": {"first_name": "Test", "last_name": "Test", "email": email},
            "answers": [] if answer is None else [{"label": WZ_QUESTION, "value": answer}]}
        self.sim.weezevent_participant(event, participant, at=at)


FLOWS: dict[str, type[Flow]] = {"helloasso": HelloAssoFlow, "secutix": SecuTixFlow, "billetweb": BilletwebFlow,
                                "weezevent": WeezeventFlow, "csv": CsvFlow, "canonical": CanonicalFlow}
