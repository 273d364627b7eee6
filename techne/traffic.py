"""Synthetic venue traffic for the demo, tests and benchmarks, and a signed HTTP sender.

:func:`generate` is pure and deterministic for a seed: realistic ticket orders for the five
pilot venues, persons who attend several venues, a consent mix (granted, refused, absent) and
e-mail campaign clicks, mostly by people who gave a consent at that venue (its newsletter
subscribers), some a few days before one of their orders there. With ``kinds_share`` (the demo's
traffic), that share of the events are of the other kinds of audience data: order lifecycle
(payments, issued tickets, a few refunds and cancellations), entrance scans (of performances
already played, with their orders), campaign sends, deliveries, opens, bounces and
unsubscribes, page views and content interactions (by known persons and by anonymous
visitors), and daily ad spend. :func:`send_all` posts each event through the real gateway,
signed per Standard Webhooks, with bounded concurrency, and reports every answer.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from producers.gateway.signatures import sign

PROGRAMME: dict[str, list[tuple[str, str]]] = {
    "opera-lyon": [("Tosca", "opera"), ("Pelléas et Mélisande", "opera"), ("Ballet de l'Opéra – Forsythe", "danse")],
    "chaillot": [("Crowd – Gisèle Vienne", "danse"), ("Theatre of Dreams – Hofesh Shechter", "danse"),
                 ("Café Müller – Pina Bausch", "danse")],
    "mixt": [("Festival Jeune Public", "jeune_public"), ("Ensemble Mixt en concert", "musique")],
    "gemeaux": [("Le Misanthrope", "theatre"), ("Jungle Book reimagined – Akram Khan", "danse"),
                ("Quatuor Ébène", "musique")],
    "lieu-unique": [("Cirque Inextremiste", "cirque"), ("Nuit électro", "musique"), ("La Mouette", "theatre")],
}
POSTCODES = {"opera-lyon": ["69001", "69003", "69006", "69100", "38000"],
             "chaillot": ["75016", "75011", "92100", "93100"],
             "mixt": ["44000", "44100", "44300", "49000"], "gemeaux": ["92330", "92160", "75014", "91300"],
             "lieu-unique": ["44000", "44200", "44600", "35000"]}
TARIFFS = ["plein", "plein", "reduit", "jeune", "abonne", "invitation"]
CHANNELS = ["web", "web", "box_office", "reseller"]
# Who a person's consent names, per purpose (the recipient list shown on the venue's form).
RECIPIENTS = {"cross_venue_analytics": ["observatoire"], "marketing": ["reseau-danse"]}


@dataclass(frozen=True)
class Outgoing:
    """One request to send: venue, JSON payload, and what the generator intended."""

    venue_id: str
    payload: dict[str, Any]
    kind: str  # consent | order | click | invalid | lifecycle | scan | campaign | page | content | ad_spend
    webhook_id: str = field(default_factory=lambda: "msg_" + uuid.uuid4().hex)


def _consent(rng: random.Random, venue: str, email: str, granted: bool, at: datetime) -> dict[str, Any]:
    purpose = "marketing" if venue in ("chaillot", "gemeaux") and rng.random() < 0.5 else "cross_venue_analytics"
    return {"type": "consent.granted" if granted else "consent.withdrawn", "event_id": str(uuid.uuid4()),
            "occurred_at": at.isoformat(), "source_system": "web-form", "customer": {"email": email},
            "purpose": purpose, "recipients": RECIPIENTS[purpose] if granted else [],
            "recipient_list_version": "2026-09", "proof_ref": f"form:{venue}:newsletter-2026"}


def _order(rng: random.Random, venue: str, email: str, at: datetime,
           performance_at: datetime | None = None) -> dict[str, Any]:
    """An order placed at ``at`` for a performance 3 to 120 days later (or ``performance_at``)."""
    production, discipline = rng.choice(PROGRAMME[venue])
    tariff = rng.choice(TARIFFS)
    qty = rng.choice([1, 1, 2, 2, 2, 3, 4])
    unit = 0 if tariff == "invitation" else rng.choice([1200, 1800, 2500, 3500, 5500, 9000])
    perf_at = performance_at or at + timedelta(days=rng.randint(3, 120), hours=rng.choice([0, 1, 2]))
    return {"type": "ticket.order_placed", "event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(),
            "source_system": "billetterie", "customer": {"email": email, "postal_code": rng.choice(POSTCODES[venue])},
            "order_id": f"{venue[:3].upper()}-{rng.randrange(10**8):08d}", "production": production,
            "performance_id": f"{venue}-{abs(hash(production)) % 1000:03d}-{perf_at:%Y%m%d}",
            "performance_at": perf_at.replace(hour=20, minute=0, second=0, microsecond=0).isoformat(),
            "discipline": discipline, "tariff": tariff, "channel": rng.choice(CHANNELS), "quantity": qty,
            "amount_minor": unit * qty, "currency": "EUR"}


def _click(rng: random.Random, venue: str, email: str, at: datetime, campaign: str) -> dict[str, Any]:
    production, _ = rng.choice(PROGRAMME[venue])
    slug = "".join(ch if ch.isalnum() else "-" for ch in production.lower()).strip("-")
    return {"type": "campaign.email_clicked", "event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(),
            "source_system": "brevo", "customer": {"email": email}, "campaign_id": campaign,
            "campaign_name": "Lettre d'information", "message_id": f"MSG-{rng.randrange(10**9):09d}",
            "list_id": "LST-SAISON", "link_url": f"https://www.{venue}.example/programmation/{slug}?utm_source=brevo",
            "link_id": f"L{rng.randint(1, 6)}", "production_id": None}


def _lifecycle(rng: random.Random, order: dict[str, Any]) -> dict[str, Any]:
    """A later step of ``order``: mostly its payment or an issued ticket, sometimes a refund or
    a cancellation (whole order)."""
    at = datetime.fromisoformat(order["occurred_at"]) + timedelta(minutes=rng.randint(1, 600))
    base = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "source_system": "billetterie",
            "customer": order["customer"], "order_id": order["order_id"]}
    roll = rng.random()
    if roll < 0.45:
        return {**base, "type": "ticket.order_paid", "amount_minor": order["amount_minor"], "currency": "EUR",
                "payment_method": "card", "channel": order["channel"]}
    if roll < 0.85:
        return {**base, "type": "ticket.issued", "ticket_id": f"T-{rng.randrange(10**9):09d}",
                "barcode": f"{rng.randrange(10**15):015d}", "production": order["production"],
                "performance_id": order["performance_id"], "performance_at": order["performance_at"],
                "discipline": order["discipline"], "tariff": order["tariff"],
                "price_minor": order["amount_minor"] // order["quantity"], "currency": "EUR"}
    if roll < 0.95:
        return {**base, "type": "ticket.order_refunded", "amount_minor": order["amount_minor"], "currency": "EUR",
                "refund_method": "original_payment", "reason": "customer_request"}
    return {**base, "type": "ticket.order_cancelled", "performance_id": order["performance_id"],
            "quantity": order["quantity"], "reason": "customer_request"}


def _scan(rng: random.Random, order: dict[str, Any]) -> dict[str, Any]:
    """An entrance scan of one of ``order``'s tickets at its performance."""
    at = datetime.fromisoformat(order["performance_at"]) - timedelta(minutes=rng.randint(-20, 45))
    return {"type": "attendance.ticket_scanned", "event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(),
            "source_system": "controle-acces", "customer": order["customer"],
            "barcode": f"{rng.randrange(10**15):015d}", "performance_id": order["performance_id"],
            "gate": rng.choice(["Porte A", "Porte B"]), "result": rng.choice(["admitted"] * 9 + ["already_scanned"])}


def _campaign(rng: random.Random, venue: str, email: str, at: datetime, campaign: str) -> dict[str, Any]:
    """One step of a newsletter's life for one recipient."""
    kind = rng.choice(["sent", "sent", "delivered", "delivered", "opened", "opened", "bounced", "unsubscribed"])
    out: dict[str, Any] = {
        "type": f"campaign.email_{kind}", "event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(),
        "source_system": "brevo", "customer": {"email": email}, "campaign_id": campaign,
        "campaign_name": "Lettre d'information", "message_id": f"MSG-{rng.randrange(10**9):09d}",
        "list_id": "LST-SAISON"}
    if kind == "sent":
        out["subject_line"] = f"La saison à {venue}"
    elif kind == "opened":
        out["machine_open"] = rng.random() < 0.3
    elif kind == "bounced":
        out["bounce_type"] = rng.choice(["hard", "soft"])
    elif kind == "unsubscribed":
        out["scope"] = "list"
    return out


def _browse(rng: random.Random, venue: str, email: str | None, at: datetime) -> dict[str, Any]:
    """A page view or a content interaction, by a known person (``email``) or an anonymous visitor."""
    production, _ = rng.choice(PROGRAMME[venue])
    slug = "".join(ch if ch.isalnum() else "-" for ch in production.lower()).strip("-")
    who: dict[str, Any] = {"visitor_id": f"v-{rng.randrange(10**10):010d}",
                           "ip_address": f"203.0.113.{rng.randint(1, 254)}", "city": "Lyon", "country_code": "FR"}
    if email is not None:
        who["email"] = email
    base = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), "source_system": "matomo",
            "customer": who, "production_id": f"SPEC-{slug[:20].upper()}"}
    if rng.random() < 0.65:
        return {**base, "type": "web.page_viewed", "page_url": f"https://www.{venue}.example/programmation/{slug}",
                "referrer_url": rng.choice([None, "https://www.google.com/", "https://www.facebook.com/"]),
                "utm_source": rng.choice([None, "brevo", "meta"]), "language": "fr",
                "device_type": rng.choice(["mobile", "desktop"])}
    return {**base, "type": "web.content_interacted", "content_id": f"VID-{slug[:20].upper()}",
            "content_type": "video", "action": rng.choice(["play", "complete"]), "duration_s": 95}


def _ad_spend(rng: random.Random, venue: str, day: datetime) -> dict[str, Any]:
    """A day of ad spend on one platform (describes no person)."""
    platform = rng.choice(["meta", "google_ads"])
    return {"type": "ads.spend_reported", "event_id": str(uuid.uuid4()), "occurred_at": day.isoformat(),
            "source_system": platform, "day": day.date().isoformat(), "platform": platform,
            "account_id": f"act_{venue}", "campaign_id": f"{venue}-{platform}-saison",
            "impressions": rng.randint(1000, 50000), "clicks": rng.randint(10, 800),
            "spend_minor": rng.randint(2000, 40000), "currency": "EUR"}


def _other_kinds(rng: random.Random, n: int, orders: list[tuple[str, str, dict[str, Any]]],
                 subscribed: set[tuple[str, str]], venues: Sequence[str], now: datetime) -> list[Outgoing]:
    """``n`` events of the kinds other than orders and clicks (see module doc)."""
    out: list[Outgoing] = []
    known = sorted(subscribed) or [(v, p) for v, p, _ in orders]
    while len(out) < n:
        i, roll = len(out), rng.random()
        if orders and roll < 0.3:
            venue, _, order = rng.choice(orders)
            out.append(Outgoing(venue, _lifecycle(rng, order), "lifecycle"))
        elif orders and roll < 0.5:  # scans happen at a performance already played: an earlier order's
            venue, person, _ = rng.choice(orders)
            played = now - timedelta(days=rng.randint(1, 30))
            order = _order(rng, venue, person, played - timedelta(days=rng.randint(3, 60)), performance_at=played)
            out.append(Outgoing(venue, order, "order"))
            if len(out) < n:
                out.append(Outgoing(venue, _scan(rng, order), "scan"))
        elif known and roll < 0.65:
            venue, person = rng.choice(known)
            at = now - timedelta(days=rng.uniform(1, 20))
            out.append(Outgoing(venue, _campaign(rng, venue, person, at, campaign_id(venue, now)), "campaign"))
        elif roll < 0.95:
            browser: str | None = None
            if known and rng.random() < 0.5:
                venue, browser = rng.choice(known)
            else:
                venue = rng.choice(list(venues))
            event = _browse(rng, venue, browser, now - timedelta(days=rng.uniform(0, 25)))
            out.append(Outgoing(venue, event, "page" if event["type"] == "web.page_viewed" else "content"))
        else:
            venue = list(venues)[i % len(venues)]
            out.append(Outgoing(venue, _ad_spend(rng, venue, now - timedelta(days=rng.randint(1, 30))), "ad_spend"))
    return out


def campaign_id(venue: str, sent: datetime) -> str:
    """The venue's newsletter campaign of the month of ``sent``."""
    return f"{venue}-newsletter-{sent:%Y-%m}"


def generate(n: int, seed: int = 7, venues: Sequence[str] = tuple(PROGRAMME), invalid_share: float = 0.01,
             now: datetime | None = None, click_share: float = 0.15, kinds_share: float = 0.0) -> list[Outgoing]:
    """``n`` events: consents first (so they precede a person's orders), then orders, a few
    schema-invalid events and e-mail clicks (``click_share`` of the non-consent events). Roughly
    45 % of (venue, person) pairs consent, 20 % refuse, 35 % never answer. Clicks are in the venue's
    newsletter of this month: one by each person who consented at a venue and orders there (its
    subscribers; as many as the click budget allows), the rest by the persons of random orders
    (consented or not) at the same venue; 60 % of clicks are a few days before the order (a
    conversion), the others weeks before. ``kinds_share`` of the non-consent events are of the
    other kinds (module doc), taken from the orders' budget."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    persons = [f"spectateur.{i:05d}.{rng.randrange(10**6):06d}@exemple.fr" for i in range(max(4, n // 6))]
    attends = {p: rng.sample(list(venues), k=rng.choice([1, 1, 1, 2, 2, 3])) for p in persons}
    pairs = [(v, p) for p in persons for v in attends[p]]
    rng.shuffle(pairs)
    consents: list[Outgoing] = []
    for venue, person in pairs[: max(1, n // 5)]:
        roll = rng.random()
        if roll < 0.65:  # 45 % granted, 20 % refused, the rest never answered
            at = now - timedelta(days=rng.randint(1, 200))
            consents.append(Outgoing(venue, _consent(rng, venue, person, roll < 0.45, at), "consent"))
    rest = n - len(consents)
    n_clicks = int(rest * click_share)
    n_invalid = int(rest * invalid_share)
    n_kinds = int(rest * kinds_share)
    out = list(consents)
    orders: list[tuple[str, str, datetime]] = []
    placed: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(rest - n_clicks - n_kinds):
        venue, person = rng.choice(pairs)
        at = now - timedelta(seconds=rng.randint(0, 3600))
        payload = _order(rng, venue, person, at)
        if i < n_invalid:
            payload = {**payload, "quantity": "deux", "discipline": "jazz-manouche"}
            out.append(Outgoing(venue, payload, "invalid"))
        else:
            out.append(Outgoing(venue, payload, "order"))
            orders.append((venue, person, at))
            placed.append((venue, person, payload))
    subscribed = {(c.venue_id, c.payload["customer"]["email"]) for c in consents
                  if c.payload["type"] == "consent.granted"}
    firsts: dict[tuple[str, str], tuple[str, str, datetime]] = {}
    for o in orders:
        if (o[0], o[1]) in subscribed:
            firsts.setdefault((o[0], o[1]), o)
    clicked = list(firsts.values())
    rng.shuffle(clicked)
    clicked = clicked[:n_clicks] + [rng.choice(orders) for _ in range(n_clicks - len(clicked)) if orders]
    for venue, person, ordered_at in clicked:
        before = timedelta(days=rng.uniform(0.2, 6.5)) if rng.random() < 0.6 else timedelta(days=rng.uniform(9, 30))
        out.append(Outgoing(venue, _click(rng, venue, person, ordered_at - before, campaign_id(venue, now)), "click"))
    if n_kinds:
        out += _other_kinds(rng, n_kinds, placed, subscribed, venues, now)
    return out[:n]


@dataclass
class SendResult:
    outgoing: Outgoing
    status: int
    body: dict[str, Any]


async def send_all(base_url: str, events: Sequence[Outgoing], secrets: dict[str, str], *,
                   concurrency: int = 32, retries: int = 5) -> list[SendResult]:
    """POST every event, signed with its venue's secret; retry 5xx/connection errors with the
    same ``webhook-id`` (so a re-delivery keeps its ``event_id``)."""
    sem = asyncio.Semaphore(concurrency)
    results: list[SendResult | None] = [None] * len(events)

    async def one(i: int, ev: Outgoing, client: httpx.AsyncClient) -> None:
        body = json.dumps(ev.payload, ensure_ascii=False).encode()
        async with sem:
            for attempt in range(retries + 1):
                headers = {"content-type": "application/json",
                           **sign(body, secret=secrets[ev.venue_id], msg_id=ev.webhook_id, timestamp=time.time())}
                try:
                    resp = await client.post(f"{base_url}/v1/venues/{ev.venue_id}/events", content=body,
                                             headers=headers)
                except httpx.HTTPError:
                    if attempt == retries:
                        results[i] = SendResult(ev, 0, {"error": "connection"})
                        return
                    await asyncio.sleep(0.2 * 2**attempt)
                    continue
                if resp.status_code >= 500 and attempt < retries:
                    await asyncio.sleep(0.2 * 2**attempt)
                    continue
                results[i] = SendResult(ev, resp.status_code, resp.json())
                return

    async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(one(i, ev, client) for i, ev in enumerate(events)))
    return [r for r in results if r is not None]
