"""One protected release of insights for one partner.

:func:`release_from_store` (re)creates the views on an open store, reads the person-level
views, builds every cell of every available insight (:mod:`insights.cells`) and protects them
together (:mod:`insights.protect`). :func:`compute` does that for a partner named in the
agreements: it refuses a partner without an agreement for :data:`insights.PURPOSE`, takes
``k`` as the largest ``min_cell_size`` of those agreements (the strictest wins: cells mix the
rows of several agreements), and opens the partner's store the way ``techne query`` does
(embedded chDB, so it fails with ``StoreLocked`` while that partner's sink runs; or the
ClickHouse server when ``TECHNE_CLICKHOUSE_URL`` is set).

Venues whose agreements put their pseudonyms in different domains cannot be compared person by
person (the same person has two pseudonyms): their overlap cells are left out and the release
lists them in ``not_comparable``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError
from core.settings import Settings
from insights import PURPOSE, views
from insights.cells import INSIGHTS, Cell, Persons, click_cells, discipline_cells, lead_cells, visits_cells
from insights.protect import Protected, protect
from schemas.agreements import Agreement, load_agreements
from sinks.base import Store
from sinks.ddl import database_name, quote


@dataclass
class Release:
    partner: str
    k: int
    generated_at: datetime
    protected: Protected
    unavailable: dict[str, list[str]] = field(default_factory=dict)
    """insight -> what the store lacks for it (columns not shared, no clicks table)."""
    not_comparable: list[tuple[str, str]] = field(default_factory=list)

    def cells(self, insight: str) -> list[Cell]:
        return [c for cid, c in self.protected.cells.items() if cid[0] == insight]

    @property
    def seasons(self) -> list[int]:
        return sorted({int(c.key[0]) for c in self.protected.cells.values() if c.insight in ("overlap", "loyalty")})

    @property
    def venues(self) -> list[str]:
        return sorted({str(c.key[1]) for c in self.cells("loyalty") if c.key[1] != "*"})


def partner_terms(agreements: Sequence[Agreement], partner: str) -> tuple[int, Callable[[str, str], bool]]:
    """``(k, comparable(venue_a, venue_b))`` for ``partner`` under its analytics agreements."""
    mine = [a for a in agreements if a.partner == partner and PURPOSE in a.purposes]
    if not mine:
        raise ConfigError(f"partner {partner!r} has no agreement for {PURPOSE}: insights read only rows shared "
                          "for that purpose")
    domains: dict[str, set[str]] = {}
    for a in mine:
        for venue in a.provider_venues:
            domains.setdefault(venue, set()).add(a.domain)

    def comparable(a: str, b: str) -> bool:
        da, db = domains.get(a, set()), domains.get(b, set())
        return len(da) == 1 and da == db

    return max(a.min_cell_size for a in mine), comparable


def _select(store: Store, database: str, view: str, columns: str) -> list[tuple[Any, ...]]:
    return store.query(f"SELECT {columns} FROM {database}.{view}")  # noqa: S608 (fixed names)


def release_from_store(store: Store, partner: str, k: int,
                       comparable: Callable[[str, str], bool] = lambda a, b: True) -> Release:
    """Build and protect the whole release from the partner's open store (see module doc)."""
    database = database_name(partner)
    available = views.ensure_views(store, database, k)
    db = quote(database)
    person = Persons()
    cells, partitions = visits_cells(
        _select(store, db, "insights_visits", "season, venue_id, person, performances, departement, dept_at"), person)
    unavailable = {name: views.missing_for(name, available) for name in INSIGHTS}
    if not unavailable["crossover"]:
        cells += discipline_cells(_select(store, db, "insights_disciplines", "season, discipline, person"), person)
    if not unavailable["lead_time"]:
        cells += lead_cells(_select(store, db, "insights_lead", "discipline, tariff, person, lead_days"), person)
    if not unavailable["conversion"]:
        cells += click_cells(_select(store, db, "insights_clicks", "venue_id, campaign_id, person, converted"), person)
    if unavailable["geography"]:
        cells = [c for c in cells if c.insight != "geography"]
        partitions = [p for p in partitions if not any(child[0] == "geography" for child in p.children)]
    apart = sorted({(str(c.key[1]), str(c.key[2])) for c in cells
                    if c.insight == "overlap" and not comparable(str(c.key[1]), str(c.key[2]))})
    cells = [c for c in cells if not (c.insight == "overlap" and (str(c.key[1]), str(c.key[2])) in apart)]
    return Release(partner, k, datetime.now(UTC), protect(cells, partitions, k),
                   {n: m for n, m in unavailable.items() if m}, apart)


def open_partner_store(settings: Settings, partner: str) -> Store:
    """The partner's store: the ClickHouse server if configured, else its embedded chDB."""
    if settings.clickhouse_url:
        from sinks.server import connect

        password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else ""
        return connect(settings.clickhouse_url, username=settings.clickhouse_user, password=password)
    from sinks.runner import open_store

    return open_store(settings, partner)


def compute(settings: Settings, partner: str, then: Callable[[Store, Release], None] | None = None) -> Release:
    """The partner's protected release (see module doc); ``then(store, release)`` runs before the
    store is closed (``techne insights publish`` writes the release there)."""
    k, comparable = partner_terms(load_agreements(settings.agreements_dir), partner)
    store = open_partner_store(settings, partner)
    try:
        release = release_from_store(store, partner, k, comparable)
        if then is not None:
            then(store, release)
        return release
    finally:
        store.close()
