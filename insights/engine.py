"""One protected release of insights for one partner.

:func:`release_from_store` (re)creates the views on an open store, reads the person-level
views, builds every cell of every available insight (:mod:`insights.cells`) and protects them
together (:mod:`insights.protect`); :func:`release_from_reader` builds the same release through
the read-only path (:mod:`sinks.reader`: no view is created, the person-level views are inlined
as a ``WITH`` clause). :func:`compute` does that for a partner named in the agreements: it
refuses a partner without an agreement for :data:`insights.PURPOSE`, takes ``k`` as the largest
``min_cell_size`` of those agreements (the strictest wins: cells mix the rows of several
agreements), and reads the partner's store through the one read path (also while its sink
runs); with ``then`` (``techne insights publish``, which writes) it opens the store itself
(embedded chDB, ``StoreLocked`` while the sink runs, or the ClickHouse server).

The venue's own store (``partner`` ``venue:<venue>``, as for ``techne query --venue``) has no
agreement: its release reads the venue's own rows (:func:`insights.views.purposes`) with
``k`` = :data:`insights.DEFAULT_MIN_CELL_SIZE`. It is the one store holding both ad spend and
the web touches and orders of the same persons (one pseudonym domain), hence the home of the
cost per new spectator; a partner store computes it only if its analytics agreements share both.

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
from insights import DEFAULT_MIN_CELL_SIZE, PURPOSE, views
from insights.cells import (
    INSIGHTS,
    Cell,
    Persons,
    acquisition_cells,
    attendance_cells,
    browsing_cells,
    click_cells,
    discipline_cells,
    funnel_cells,
    lead_cells,
    visits_cells,
)
from insights.protect import Protected, protect
from schemas.agreements import Agreement, load_agreements
from sinks.base import Store
from sinks.ddl import database_name, quote
from sinks.reader import Reader
from sinks.tables import VENUE_STORE


@dataclass
class Release:
    partner: str
    k: int
    generated_at: datetime
    protected: Protected
    unavailable: dict[str, list[str]] = field(default_factory=dict)
    """insight -> what the store lacks for it (columns not shared, no clicks table)."""
    not_comparable: list[tuple[str, str]] = field(default_factory=list)
    spend: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(venue, month, channel) -> ad spend in minor units (EUR): describes no person, not protected."""

    def cells(self, insight: str) -> list[Cell]:
        return [c for cid, c in self.protected.cells.items() if cid[0] == insight]

    @property
    def seasons(self) -> list[int]:
        return sorted({int(c.key[0]) for c in self.protected.cells.values() if c.insight in ("overlap", "loyalty")})

    @property
    def venues(self) -> list[str]:
        return sorted({str(c.key[1]) for c in self.cells("loyalty") if c.key[1] != "*"})


def own_store(partner: str) -> bool:
    """``partner`` names a venue's own store (``venue:<venue>``)."""
    return partner.startswith(VENUE_STORE)


def store_database(partner: str) -> str:
    """The database of a partner's store, or of a venue's own (``venue_<venue>``)."""
    if own_store(partner):
        return database_name(f"venue_{partner.removeprefix(VENUE_STORE)}")
    return database_name(partner)


def partner_terms(agreements: Sequence[Agreement], partner: str) -> tuple[int, Callable[[str, str], bool]]:
    """``(k, comparable(venue_a, venue_b))`` for ``partner`` under its analytics agreements (for a
    venue's own store: the default k, one venue, one domain)."""
    if own_store(partner):
        return DEFAULT_MIN_CELL_SIZE, lambda a, b: True
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


Select = Callable[[str, str], list[tuple[Any, ...]]]
"""``select(view, columns)``: rows of a person-level view."""


def release_from_store(store: Store, partner: str, k: int,
                       comparable: Callable[[str, str], bool] = lambda a, b: True) -> Release:
    """(Re)create the views on the partner's open store, then build and protect the release."""
    database = store_database(partner)
    available = views.ensure_views(store, database, k, own_store(partner))
    db = quote(database)
    return _release(lambda view, columns: _select(store, db, view, columns), available, partner, k, comparable)


def release_from_reader(reader: Reader, partner: str, k: int,
                        comparable: Callable[[str, str], bool] = lambda a, b: True) -> Release:
    """The same release through the read-only path: the views are inlined as a ``WITH`` clause."""
    database = store_database(partner)
    available = views.available_columns(reader, database)
    with_clause = views.ctes(database, available, own_store(partner))

    def select(view: str, columns: str) -> list[tuple[Any, ...]]:
        return reader.query(f"{with_clause} SELECT {columns} FROM {view}")  # noqa: S608 (fixed names)

    return _release(select, available, partner, k, comparable)


def _release(select: Select, available: set[str], partner: str, k: int,
             comparable: Callable[[str, str], bool]) -> Release:
    """Build and protect the whole release from the person-level views (see module doc)."""
    person = Persons()
    cells, partitions = visits_cells(
        select("insights_visits", "season, venue_id, person, performances, departement, dept_at"), person)
    unavailable = {name: views.missing_for(name, available) for name in INSIGHTS}
    if not unavailable["crossover"]:
        cells += discipline_cells(select("insights_disciplines", "season, discipline, person"), person)
    if not unavailable["lead_time"]:
        cells += lead_cells(select("insights_lead", "discipline, tariff, person, lead_days"), person)
    if not unavailable["conversion"]:
        cells += click_cells(select("insights_clicks", "venue_id, campaign_id, person, converted"), person)
    if not unavailable["campaign_funnel"]:
        cells += funnel_cells(select("insights_funnel", "venue_id, campaign_id, person, sent, delivered, opened, "
                                                        "clicked, ordered"), person)
    if not unavailable["attendance"]:
        shown, parts = attendance_cells(
            select("insights_attendance", "venue_id, performance_id, person, attended"), person)
        cells, partitions = cells + shown, partitions + parts
    spend: dict[tuple[str, str, str], int] = {}
    if not unavailable["acquisition"]:
        shown, parts = acquisition_cells(select("insights_acquisition", "venue_id, month, person, channel"), person)
        cells, partitions = cells + shown, partitions + parts
        spend = {(str(v), str(m), str(c)): int(n)
                 for v, m, c, n in select("insights_spend", "venue_id, month, channel, spend_minor")}
    if not unavailable["web_before_purchase"]:
        cells += browsing_cells(select("insights_browsing", "venue_id, person, kind, item"), person)
    if unavailable["geography"]:
        cells = [c for c in cells if c.insight != "geography"]
        partitions = [p for p in partitions if not any(child[0] == "geography" for child in p.children)]
    apart = sorted({(str(c.key[1]), str(c.key[2])) for c in cells
                    if c.insight == "overlap" and not comparable(str(c.key[1]), str(c.key[2]))})
    cells = [c for c in cells if not (c.insight == "overlap" and (str(c.key[1]), str(c.key[2])) in apart)]
    return Release(partner, k, datetime.now(UTC), protect(cells, partitions, k),
                   {n: m for n, m in unavailable.items() if m}, apart, spend)


def open_partner_store(settings: Settings, partner: str) -> Store:
    """The partner's store: the ClickHouse server if configured, else its embedded chDB."""
    if settings.clickhouse_url:
        from sinks.server import connect

        password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else ""
        return connect(settings.clickhouse_url, username=settings.clickhouse_user, password=password)
    from sinks.runner import open_store

    return open_store(settings, partner, create=False)


def compute(settings: Settings, partner: str, then: Callable[[Store, Release], None] | None = None) -> Release:
    """The partner's protected release (see module doc); ``then(store, release)`` runs before the
    store is closed (``techne insights publish`` writes the release there)."""
    k, comparable = partner_terms(load_agreements(settings.agreements_dir), partner)
    if then is None:  # a read: the one read path, also while the partner's sink runs
        from sinks.reader import open_reader
        from sinks.runner import partner_ref

        with open_reader(settings, partner_ref(settings, partner)) as reader:
            return release_from_reader(reader, partner, k, comparable)
    store = open_partner_store(settings, partner)
    try:
        release = release_from_store(store, partner, k, comparable)
        if then is not None:
            then(store, release)
        return release
    finally:
        store.close()
