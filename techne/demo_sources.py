"""The demo's venues, each through the source it would really use, in that source's own shapes.

:data:`SOURCE_OF_VENUE`: Le Lieu Unique sells on HelloAsso (signed ``Order`` notifications whose
form carries the opt-in custom field, and a ``Payment`` refund or two), the Opéra de Lyon on
SecuTix (``CONTACT_UPDATED`` opt-ins, ``ORDER_CLOSED`` orders, Basic auth), EPCC Mixt on Billetweb
(attendees with the opt-in custom question, polled from the local API simulator), Les Gémeaux
from spreadsheets (the ``consentements`` and ``billetterie-fr`` CSV profiles), Chaillot through
the canonical signed webhook (as do every venue's other tools: newsletter, scanners…); Le Lieu
Unique's website also sends Matomo tracker hits (the JavaScript tracker's shape with
``r``/``pv_id``/``h``/``m``/``s``, and the Node tracker's without).

:func:`send_by_source` translates the generated traffic (techne/traffic.py: canonical payloads)
into those deliveries, sends them, and returns one :class:`SendResult` per *event* (a vendor
delivery yields several: the opt-in's consent before the order), each with its source, so the
demo accounts for every event as before and adds a table per source (:func:`per_source`).
Event ids are the ones the bus derives (the connectors' own pure mappings), which is how each
event is found again in the audit.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from core.settings import Settings
from producers.ingest import derived_event_id
from techne.traffic import Outgoing, SendResult, send_all

PARIS = ZoneInfo("Europe/Paris")
SOURCE_OF_VENUE = {"lieu-unique": "helloasso", "opera-lyon": "secutix", "mixt": "billetweb", "gemeaux": "csv",
                   "chaillot": "canonical"}
HA_QUESTION = "J'accepte que mes réservations soient partagées avec l'Observatoire des publics"
BW_QUESTION = "Partage avec l'Observatoire des publics (statistiques)"
SITE_KEY = "site_lieu_unique_demo"
TARIFF_LABELS = {"plein": "Tarif plein", "reduit": "Tarif réduit", "jeune": "Tarif jeune -26 ans",
                 "abonne": "Tarif abonné", "invitation": "Invitation"}
STX_TARIFF = {"plein": "FULL", "reduit": "REDUCED", "jeune": "YOUTH", "abonne": "SUBSCRIBER",
              "invitation": "INVITATION"}
STX_CHANNEL = {"web": "INTERNET", "box_office": "BOX_OFFICE", "reseller": "RESELLER"}


@dataclass(frozen=True)
class Sourced:
    """One event's answer and the source it came through."""

    source: str
    result: SendResult


def source_env() -> dict[str, str]:
    """Fresh vendor credentials and the demo website, as ``TECHNE_*`` entries for every process."""
    creds = {"helloasso": secrets.token_urlsafe(24), "secutix": f"secutix-push:{secrets.token_urlsafe(16)}",
             "billetweb": f"bw-demo:{secrets.token_urlsafe(16)}"}
    return {"TECHNE_SOURCE_SECRETS": json.dumps({"lieu-unique": {"helloasso": [creds["helloasso"]]},
                                                 "opera-lyon": {"secutix": [creds["secutix"]]},
                                                 "mixt": {"billetweb": [creds["billetweb"]]}}),
            "TECHNE_WEB_SITES": json.dumps({SITE_KEY: {"venue": "lieu-unique", "origins": []}})}


def _paris(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(PARIS)


def _qty(order: dict[str, Any]) -> int:
    """The order's ticket count (an invalid generated order carries a word instead)."""
    return order["quantity"] if isinstance(order["quantity"], int) else 1


def _number(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _answers(batch: Sequence[Outgoing], venue: str) -> dict[str, Outgoing]:
    """The person's consent decision at ``venue`` (the last one generated), by e-mail."""
    return {e.payload["customer"]["email"]: e for e in batch if e.venue_id == venue and e.kind == "consent"}


def _ok(source: str, outgoing: Outgoing, event_id: str) -> Sourced:
    return Sourced(source, SendResult(outgoing, 202, {"event_id": event_id}))


def _consent_of(decision: Outgoing, first: set[str]) -> Outgoing:
    """The generator's consent for the first event that carries it, a repeat marker after."""
    email = decision.payload["customer"]["email"]
    if email in first:
        return Outgoing(decision.venue_id, decision.payload, "consent-repeat")
    first.add(email)
    return decision


async def _post(client: httpx.AsyncClient, sem: asyncio.Semaphore, url: str, body: bytes,
                headers: dict[str, str]) -> httpx.Response:
    async with sem:
        for attempt in range(6):
            try:
                resp = await client.post(url, content=body, headers={"content-type": "application/json", **headers})
            except httpx.HTTPError:
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if resp.status_code < 500:
                return resp
            await asyncio.sleep(0.2 * 2**attempt)
    return httpx.Response(599, json={"error": "connection"})


# --- HelloAsso ----------------------------------------------------------------------------------

def helloasso_order(order: dict[str, Any], answer: str | None, invalid: bool = False) -> dict[str, Any]:
    """An ``Order`` notification for one generated order (the opt-in answered when ``answer``)."""
    oid = _number(order["order_id"]) % 10**9
    total: Any = "trente" if invalid else order["amount_minor"]
    unit = order["amount_minor"] // _qty(order)
    custom = [{"id": 7101, "name": HA_QUESTION, "type": "YesNo", "answer": answer}] if answer else []
    items = [{"id": oid * 10 + i, "name": TARIFF_LABELS.get(order["tariff"], "Tarif plein"), "amount": unit,
              "type": "Registration", "state": "Processed", "customFields": custom if i == 0 else []}
             for i in range(_qty(order))]
    return {"eventType": "Order", "data": {
        "id": oid, "date": order["occurred_at"], "formSlug": "saison-2026", "formType": "Event",
        "payer": {"email": order["customer"]["email"], "zipCode": order["customer"].get("postal_code"),
                  "country": "FRA"},
        "items": items, "amount": {"total": total},
        "payments": [{"id": oid, "amount": total, "date": order["occurred_at"], "paymentMeans": "Card",
                      "state": "Authorized"}]}}


async def _helloasso(url: str, key: str, batch: Sequence[Outgoing], refunds: int) -> list[Sourced]:
    answers, first = _answers(batch, "lieu-unique"), set[str]()
    orders = [e for e in batch if e.venue_id == "lieu-unique" and e.kind in ("order", "invalid")]
    deliveries: list[tuple[dict[str, Any], list[Outgoing]]] = []
    for e in orders:
        decision = answers.get(e.payload["customer"]["email"])
        answer = None if decision is None else ("Oui" if decision.payload["type"] == "consent.granted" else "Non")
        carried = [_consent_of(decision, first)] if decision is not None else []
        deliveries.append((helloasso_order(e.payload, answer, e.kind == "invalid"), [*carried, e]))
    for e in [o for o in orders if o.kind == "order" and o.payload["amount_minor"] > 0][:refunds]:
        oid = _number(e.payload["order_id"]) % 10**9
        note = {"eventType": "Payment", "data": {
            "id": oid + 1, "state": "Refunded", "date": e.payload["occurred_at"], "amount": e.payload["amount_minor"],
            "order": {"id": oid}, "payer": {"email": e.payload["customer"]["email"]}}}
        deliveries.append((note, [Outgoing("lieu-unique", {"type": "ticket.order_refunded"}, "refund")]))
    return await _push(f"{url}/v1/venues/lieu-unique/sources/helloasso", deliveries, "helloasso",
                       lambda body: {"x-ha-signature": hmac.new(key.encode(), body, hashlib.sha256).hexdigest()})


async def _push(url: str, deliveries: list[tuple[dict[str, Any], list[Outgoing]]], source: str,
                headers: Any) -> list[Sourced]:
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30.0) as client:
        bodies = [json.dumps(note, ensure_ascii=False).encode() for note, _ in deliveries]
        answers = await asyncio.gather(*(_post(client, sem, url, b, headers(b)) for b in bodies))
    out: list[Sourced] = []
    for (_, outgoing), resp in zip(deliveries, answers, strict=True):
        body = resp.json()
        ids = body.get("event_ids") if resp.status_code == 202 else None
        if ids is not None and len(ids) == len(outgoing):
            out += [_ok(source, o, str(i)) for o, i in zip(outgoing, ids, strict=True)]
        else:
            out += [Sourced(source, SendResult(o, resp.status_code, body)) for o in outgoing]
    return out


# --- SecuTix ------------------------------------------------------------------------------------

def secutix_order(order: dict[str, Any], invalid: bool = False) -> dict[str, Any]:
    qty, unit = _qty(order), order["amount_minor"] / _qty(order) / 100
    production = order["production"]
    items = [{"ticketId": _number(order["order_id"]) % 10**8 * 10 + i, "productId": f"P{_number(production) % 10**4}",
              "productName": production, "genre": order["discipline"].upper(), "performanceId": order["performance_id"],
              "performanceDate": order["performance_at"], "hallName": "Grande salle",
              "tariffCode": STX_TARIFF.get(order["tariff"], "FULL"), "price": "abc" if invalid else round(unit, 2)}
             for i in range(qty)]
    return {"notificationType": "ORDER_CLOSED", "institutionCode": "OPERA_LYON", "order": {
        "orderId": order["order_id"], "closingDate": order["occurred_at"],
        "salesChannel": STX_CHANNEL.get(order["channel"], "INTERNET"), "currency": "EUR",
        "contact": {"contactNumber": _number(order["customer"]["email"]) % 10**7, "email": order["customer"]["email"],
                    "zipCode": order["customer"].get("postal_code"), "countryCode": "FR"},
        "items": items}}


def secutix_opt_in(consent: dict[str, Any]) -> dict[str, Any]:
    email = consent["customer"]["email"]
    return {"notificationType": "CONTACT_UPDATED", "institutionCode": "OPERA_LYON", "contact": {
        "contactNumber": _number(email) % 10**7, "email": email, "modificationDate": consent["occurred_at"],
        "optIns": [{"code": "OPTIN_OBSERVATOIRE", "label": "Partager mes réservations avec l'Observatoire des publics",
                    "value": consent["type"] == "consent.granted", "date": consent["occurred_at"]}]}}


async def _secutix(url: str, basic: str, batch: Sequence[Outgoing]) -> list[Sourced]:
    target = f"{url}/v1/venues/opera-lyon/sources/secutix"
    auth = {"authorization": "Basic " + base64.b64encode(basic.encode()).decode()}
    consents = [(secutix_opt_in(e.payload), [e]) for e in batch if e.venue_id == "opera-lyon" and e.kind == "consent"]
    orders = [(secutix_order(e.payload, e.kind == "invalid"), [e]) for e in batch
              if e.venue_id == "opera-lyon" and e.kind in ("order", "invalid")]
    out = await _push(target, consents, "secutix", lambda _: auth)  # opt-ins acknowledged before the orders
    return out + await _push(target, orders, "secutix", lambda _: auth)


# --- Billetweb (poll) ---------------------------------------------------------------------------

def _billetweb(settings: Settings, batch: Sequence[Outgoing]) -> list[Sourced]:
    from producers.adapters.billetweb import attendee_opt_ins, map_attendee
    from producers.adapters.consent import consent_events, load_consent_sources
    from producers.poll import run as poll
    from techne.vendor_sim import VendorSimulator

    user, key = settings.source_secrets["mixt"]["billetweb"][0].get_secret_value().split(":", 1)
    sim = VendorSimulator(billetweb=(user, key)).start()
    answers, first = _answers(batch, "mixt"), set[str]()
    carried: dict[str, tuple[Outgoing | None, Outgoing]] = {}
    try:
        for e in batch:
            if e.venue_id != "mixt" or e.kind not in ("order", "invalid"):
                continue
            o = e.payload
            event_id = o["performance_id"]
            if event_id not in sim.billetweb_events:
                start = _paris(o["performance_at"]).strftime("%Y-%m-%d %H:%M:%S")
                sim.billetweb_event(event_id, o["production"], start)
            decision = answers.get(o["customer"]["email"])
            unit = o["amount_minor"] / _qty(o) / 100
            for i in range(_qty(o)):
                aid = f"{_number(o['order_id']) % 10**8}{i}"
                attendee: dict[str, Any] = {
                    "id": aid, "barcode": f"BW{aid}", "used": "0", "email": o["customer"]["email"],
                    "order_email": o["customer"]["email"], "ticket": TARIFF_LABELS.get(o["tariff"], "Tarif plein"),
                    "category": "Placement libre", "price": "abc" if e.kind == "invalid" else f"{unit:.2f}",
                    "order_id": o["order_id"], "order_date": _paris(o["occurred_at"]).strftime("%Y-%m-%d %H:%M:%S")}
                if decision is not None:
                    granted = decision.payload["type"] == "consent.granted"
                    attendee["custom_order"] = {BW_QUESTION: "Oui" if granted else "Non"}
                sim.billetweb_attendee(event_id, attendee)
                carried[aid] = (_consent_of(decision, first) if decision is not None else None, e)
        mapping = load_consent_sources(settings.consent_sources_file).mapping("mixt", "billetweb")
        expected: list[tuple[str, Outgoing]] = []
        for event_id, attendees in sim.attendees.items():
            for att in attendees.values():
                consent, order = carried[str(att["id"])]
                for ev in consent_events("billetweb", attendee_opt_ins(att), mapping):
                    expected.append((ev.key, consent or order))
                for ev in map_attendee(att, sim.billetweb_events[event_id]):
                    expected.append((ev.key, order))
        (report,) = asyncio.run(poll(settings, "mixt", "billetweb", sim.billetweb_url, interval=1.0, once=True))
    finally:
        sim.stop()
    refused = {str(r["key"]) for r in report.rejected}
    return [Sourced("billetweb", SendResult(o, 422 if k in refused else 202,
                                            {"event_id": str(derived_event_id("mixt", "billetweb", k))}))
            for k, o in expected]


# --- CSV ----------------------------------------------------------------------------------------

CONSENT_HEADER = ["E-mail", "Finalité", "Statut", "Date", "Destinataires", "Version de la liste", "Lieu de recueil"]
ORDER_HEADER = ["N° commande", "Date de commande", "N° client", "E-mail", "Code postal", "Spectacle", "Code séance",
                "Date de séance", "Salle", "Genre", "Tarif", "Canal", "Nb places", "Montant TTC"]
GENRES = {"theatre": "Théâtre", "danse": "Danse", "musique": "Musique", "opera": "Opéra", "cirque": "Cirque",
          "jeune_public": "Jeune public"}
TARIFS = {"plein": "Plein", "reduit": "Réduit", "jeune": "Jeune", "abonne": "Abonné", "invitation": "Invitation"}
CANAUX = {"web": "Internet", "box_office": "Guichet", "reseller": "Revendeur"}


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    return ("\r\n".join(";".join(r) for r in [header, *rows]) + "\r\n").encode("utf-8-sig")


def _local(iso: str) -> str:
    return _paris(iso).strftime("%d/%m/%Y %H:%M:%S")


def _csv_import(settings: Settings, batch: Sequence[Outgoing]) -> list[Sourced]:
    from producers.csv_import import read_profile_table, run_import, validate_rows
    from producers.csv_profiles import load_profile

    consents = [e for e in batch if e.venue_id == "gemeaux" and e.kind == "consent"]
    orders = [e for e in batch if e.venue_id == "gemeaux" and e.kind in ("order", "invalid")]
    files = [("consentements", consents, [[
        e.payload["customer"]["email"], "Marketing" if e.payload["purpose"] == "marketing" else "Observatoire",
        "Accordé" if e.payload["type"] == "consent.granted" else "Retiré", _local(e.payload["occurred_at"]),
        ",".join(e.payload["recipients"]), e.payload["recipient_list_version"], "guichet"] for e in consents]),
        ("billetterie-fr", orders, [[
            o["order_id"], _local(o["occurred_at"]), "", o["customer"]["email"], o["customer"].get("postal_code", ""),
            o["production"], o["performance_id"], _local(o["performance_at"]), "Grande salle",
            GENRES.get(o["discipline"], "Autre"), TARIFS.get(o["tariff"], "Plein"),
            CANAUX.get(o["channel"], "Internet"),
            "deux" if e.kind == "invalid" else str(o["quantity"]), f"{o['amount_minor'] / 100:.2f}".replace(".", ",")]
            for e in orders for o in [e.payload]])]
    out: list[Sourced] = []
    for profile_name, outgoing, rows in files:  # consents first, acknowledged before the orders
        if not rows:
            continue
        profile = load_profile(profile_name)
        header = CONSENT_HEADER if profile_name == "consentements" else ORDER_HEADER
        table = read_profile_table(_csv(header, rows), f"{profile_name}.csv", profile)
        valid, checked = validate_rows(table, profile, "gemeaux", settings.require_subject_key())
        bad = {e.line for e in checked.errors}
        ids = iter(r.event_id for r in valid)
        report = asyncio.run(run_import(settings, table, "gemeaux", profile))
        status = 202 if report.sent + report.already_imported == len(valid) else 503
        for line, e in enumerate(outgoing, start=2):
            out.append(Sourced("csv", SendResult(e, 422, {"error": "row"}) if line in bad
                               else SendResult(e, status, {"event_id": next(ids)})))
    return out


# --- Matomo -------------------------------------------------------------------------------------

def matomo_hits(batch: Sequence[Outgoing], n: int) -> list[dict[str, str]]:
    """Tracker requests of Le Lieu Unique's site: the JS tracker's page views (``r``, ``pv_id``,
    local time) and the Node tracker's (neither), for the visitors of some orders."""
    people = [e.payload["customer"]["email"] for e in batch if e.venue_id == "lieu-unique" and e.kind == "order"]
    hits = []
    for i, email in enumerate((people * (n // max(1, len(people)) + 1))[:n]):
        visitor = hashlib.sha256(email.encode()).hexdigest()[:16]
        page = ["programme", "nuit-electro", "la-mouette", "billetterie"][i % 4]
        hit = {"idsite": SITE_KEY, "rec": "1", "_id": visitor, "url": f"https://www.lelieuunique.example/{page}",
               "action_name": page.replace("-", " ").title()}
        if i % 3:
            hit.update(r=f"{_number(f'{email}{i}') % 10**6:06d}", pv_id=f"{_number(email) % 10**6:06d}",
                       h=str(10 + i % 12), m=str(i % 60), s=str((7 * i) % 60))
        hits.append(hit)
    return hits


async def _matomo(url: str, hits: list[dict[str, str]]) -> list[Sourced]:
    from producers.matomo import to_events

    expected = to_events(hits)
    async with httpx.AsyncClient(timeout=30.0) as client:
        resp = await client.post(f"{url}/matomo.php", json={"requests": ["?" + urlencode(h) for h in hits]})
    status = 202 if resp.status_code == 204 else resp.status_code
    return [Sourced("matomo", SendResult(Outgoing("lieu-unique", payload, "web"), status,
                                         {"event_id": str(derived_event_id("lieu-unique", "matomo", key))}))
            for _, payload, key in expected]


# --- all of them --------------------------------------------------------------------------------

def send_by_source(settings: Settings, url: str, batch: Sequence[Outgoing], secrets_: dict[str, str], *,
                   refunds: int = 2, web_hits: int = 40) -> list[Sourced]:
    """Send ``batch`` through each venue's source (see module doc); one :class:`Sourced` per event."""
    creds = settings.source_secrets
    out = asyncio.run(_helloasso(url, creds["lieu-unique"]["helloasso"][0].get_secret_value(), batch, refunds))
    out += asyncio.run(_secutix(url, creds["opera-lyon"]["secutix"][0].get_secret_value(), batch))
    out += _billetweb(settings, batch)
    out += _csv_import(settings, batch)
    # Chaillot's everything, and every venue's other tools (newsletter, scanners, web, ad spend…)
    canonical = [e for e in batch if e.venue_id == "chaillot" or e.kind not in ("consent", "order", "invalid")]
    for phase in ([e for e in canonical if e.kind == "consent"], [e for e in canonical if e.kind != "consent"]):
        out += [Sourced("canonical", r) for r in asyncio.run(send_all(url, phase, secrets_))]
    out += asyncio.run(_matomo(url, matomo_hits(batch, web_hits)))
    return out


def with_sources(settings: Settings, env: dict[str, str]) -> Settings:
    """``settings`` with the demo's secrets (subject key, master keys of the per-person data keys,
    vendor credentials) for in-process imports and polls."""
    creds = json.loads(env["TECHNE_SOURCE_SECRETS"])
    return settings.model_copy(update={
        "subject_key": SecretStr(env["TECHNE_SUBJECT_KEY"]), "bootstrap": env["TECHNE_BOOTSTRAP"],
        "datakey_master_keys": {int(v): SecretStr(k)
                                for v, k in json.loads(env["TECHNE_DATAKEY_MASTER_KEYS"]).items()},
        "source_secrets": {v: {s: [SecretStr(x) for x in xs] for s, xs in by.items()} for v, by in creds.items()}})


def per_source(sent: Sequence[Sourced], audit: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """Per source: events received, accepted, shared (with at least one partner), dropped for consent."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for s in sent:
        row = table[s.source]
        row["received"] += 1
        if s.result.status != 202:
            continue
        row["accepted"] += 1
        outcomes = {d["outcome"] for d in audit.get(str(s.result.body.get("event_id")), [])}
        if "shared" in outcomes:
            row["shared"] += 1
        elif "dropped" in outcomes:
            row["dropped_consent"] += 1
    return {source: {k: row[k] for k in ("received", "accepted", "shared", "dropped_consent")}
            for source, row in sorted(table.items())}


def print_per_source(table: dict[str, dict[str, int]]) -> None:
    print(f"\n{'source':<12}{'venue':<14}{'received':>10}{'accepted':>10}{'shared':>8}{'dropped (consent)':>19}")
    venue_of = {s: v for v, s in SOURCE_OF_VENUE.items()} | {"matomo": "lieu-unique", "canonical": "chaillot+tools"}
    for source, row in table.items():
        print(f"{source:<12}{venue_of.get(source, ''):<14}{row['received']:>10}{row['accepted']:>10}"
              f"{row['shared']:>8}{row['dropped_consent']:>19}")
