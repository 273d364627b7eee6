"""Synthetic shared orders and e-mail clicks for trying the insights (and for their tests).

:func:`orders` is pure and deterministic for a seed: persons with a home département, favourite
disciplines and a habit (occasional, regular, subscriber) attend the pilot venues over several
seasons, each order pseudonymized already (rows as a partner receives them).
:func:`load` inserts them into a partner's open store; ``techne insights sample`` uses it on a
store that holds no row yet, never next to real data.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from insights import PURPOSE
from sinks.base import Store
from sinks.ddl import TableSpec, row_from_record, to_json_each_row
from sinks.tables import CLICK_TYPE, PartnerTables

PROGRAMME: dict[str, list[tuple[str, str]]] = {
    "opera-lyon": [("Tosca", "opera"), ("Pelléas et Mélisande", "opera"), ("Forsythe", "danse"),
                   ("Le Messie", "musique")],
    "chaillot": [("Crowd", "danse"), ("Theatre of Dreams", "danse"), ("Café Müller", "danse"),
                 ("Les Bonnes", "theatre")],
    "mixt": [("Festival Jeune Public", "jeune_public"), ("Ensemble Mixt", "musique")],
    "gemeaux": [("Le Misanthrope", "theatre"), ("Jungle Book", "danse"), ("Quatuor Ébène", "musique")],
    "lieu-unique": [("Cirque Inextremiste", "cirque"), ("Nuit électro", "musiques_actuelles"),
                    ("La Mouette", "theatre")],
}
HOME: dict[str, list[tuple[str, int]]] = {
    "opera-lyon": [("69", 60), ("38", 12), ("01", 8), ("42", 6), ("75", 3), ("71", 2)],
    "chaillot": [("75", 50), ("92", 16), ("93", 12), ("94", 10), ("78", 5), ("69", 1)],
    "mixt": [("44", 70), ("49", 10), ("85", 8), ("35", 4)],
    "gemeaux": [("92", 55), ("75", 20), ("91", 12), ("94", 6), ("78", 4)],
    "lieu-unique": [("44", 65), ("35", 10), ("49", 8), ("85", 7), ("75", 3)],
}
TARIFFS = [("plein", 40), ("reduit", 18), ("abonne", 15), ("jeune", 12), ("senior", 8), ("pass_culture", 5),
           ("invitation", 2)]
LEAD_DAYS = {"opera": 60, "danse": 35, "theatre": 25, "musique": 30, "jeune_public": 15, "cirque": 20,
             "musiques_actuelles": 10}
AGREEMENT = "dsa-observatoire-2026"


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def orders(persons: int = 2500, seasons: Sequence[int] = (2024, 2025, 2026), seed: int = 11,
           agreement_id: str = AGREEMENT) -> list[dict[str, Any]]:
    """SharedTicketOrder records (see module doc); performances fall inside the given seasons."""
    rng = random.Random(seed)
    venues = list(PROGRAMME)
    out: list[dict[str, Any]] = []
    for _ in range(persons):
        pseudonym = f"{rng.getrandbits(256):064x}"
        home = rng.choices(venues, weights=[30, 25, 10, 20, 15])[0]
        dept = _pick(rng, HOME[home])
        also = [v for v in venues if v != home and rng.random() < (0.35 if v in ("chaillot", "gemeaux") else 0.12)]
        habit = rng.choices(["occasional", "regular", "subscriber"], weights=[60, 30, 10])[0]
        start = rng.choice(list(seasons))
        for season in seasons:
            if season < start or (season > start and rng.random() < (0.45 if habit == "occasional" else 0.15)):
                continue
            visits = {"occasional": 1, "regular": rng.randint(1, 4), "subscriber": rng.randint(4, 9)}[habit]
            for _ in range(visits):
                venue = home if not also or rng.random() < 0.7 else rng.choice(also)
                production, discipline = rng.choice(PROGRAMME[venue])
                perf = datetime(season, 9, 15, 20, tzinfo=UTC) + timedelta(days=rng.randint(0, 260))
                lead = max(0, int(rng.expovariate(1 / LEAD_DAYS[discipline])))
                tariff = "abonne" if habit == "subscriber" else _pick(rng, TARIFFS)
                at = perf - timedelta(days=lead, hours=rng.randint(1, 12))
                out.append({
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "event_type": "ticket.order_placed", "occurred_at": at, "received_at": at + timedelta(seconds=2),
                    "venue_id": venue, "agreement_id": agreement_id, "purpose": PURPOSE,
                    "subject_pseudonym": pseudonym, "pseudonym_key_version": 1, "production": production,
                    "performance_id": f"{venue}-{production[:12]}-{perf:%Y%m%d}", "performance_at": perf,
                    "discipline": discipline, "tariff": tariff, "channel": rng.choice(["web", "web", "box_office"]),
                    "quantity": rng.choice([1, 2, 2, 3]), "amount_minor": 2500 * rng.randint(1, 4), "currency": "EUR",
                    "departement": dept if rng.random() < 0.93 else None, "age_band": None,
                })
    return out


def clicks(shared: Sequence[dict[str, Any]], seed: int = 12, campaigns: int = 3,
           agreement_id: str = AGREEMENT) -> list[dict[str, Any]]:
    """SharedEmailClick records of the persons in ``shared``: some a few days before one of their orders."""
    rng = random.Random(seed)
    out = []
    for order in shared:
        if rng.random() < 0.25:
            venue = order["venue_id"]
            converted = rng.random() < 0.5
            at = order["occurred_at"] - timedelta(days=rng.uniform(0.1, 6.5) if converted else rng.uniform(10, 40))
            out.append({"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "event_type": CLICK_TYPE,
                        "occurred_at": at, "received_at": at + timedelta(seconds=2), "venue_id": venue,
                        "agreement_id": agreement_id, "purpose": PURPOSE,
                        "subject_pseudonym": order["subject_pseudonym"], "pseudonym_key_version": 1,
                        "campaign_id": f"{venue}-newsletter-{rng.randint(1, campaigns)}", "production_id": None})
    return out


def insert(store: Store, spec: TableSpec, records: Sequence[dict[str, Any]], chunk: int = 20_000) -> int:
    """Insert ``records`` into ``spec``'s table (the columns it has), in chunks; returns the count."""
    columns = tuple(c for c in spec.columns if c.default_sql is None or c.nullable)
    names = [c.name for c in columns]
    for start in range(0, len(records), chunk):
        rows = [row_from_record(r, columns) for r in records[start:start + chunk]]
        store.insert(spec.qualified, names, to_json_each_row(rows), "JSONEachRow", f"sample-{start}-{uuid.uuid4()}")
    return len(records)


def load(store: Store, tables: PartnerTables, persons: int = 2500, seed: int = 11,
         with_clicks: bool = True) -> tuple[int, int]:
    """Insert sample orders (and clicks, if the partner's agreements share them: ``tables.clicks``)
    into an open store whose tables exist (:func:`sinks.migrate.ensure_partner`)."""
    shared = orders(persons, seed=seed)
    n_orders = insert(store, tables.orders, shared)
    n_clicks = 0
    if with_clicks and tables.clicks is not None:
        n_clicks = insert(store, tables.clicks, clicks(shared, seed=seed + 1))
    return n_orders, n_clicks
