# ruff: noqa: S608  (SQL on fixed test database names)
"""Insights on a real partner store (chDB): the views, the engine against an independent oracle,
purpose limitation, erasure, and the end-to-end property: generated data with rare combinations
never yields a published cell, or a difference of two published cells, below k."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.settings import Settings
from insights import grafana, render, sample
from insights.cells import FREQUENCY, Cell, CellId, Partition, low_quantile
from insights.engine import Release, partner_terms, release_from_reader, release_from_store
from insights.protect import Protected
from insights.publish import publish
from schemas.agreements import load_agreements
from sinks.chdb import ChdbStore
from sinks.erasure import EraseHandler
from sinks.migrate import ensure_table
from sinks.read_server import ReadOnlySession
from sinks.reader import SessionReader
from sinks.runner import open_store
from sinks.tables import partner_tables
from tests.support.insights import check_release

pytestmark = pytest.mark.integration
PARTNER, NO_DEPT = "obs", "obs_nodept"
VENUES = ("chaillot", "gemeaux", "opera-lyon")
DISCIPLINES = ("danse", "theatre", "opera")
TARIFFS = ("plein", "reduit")
DEPTS = ("69", "75", "2A", None)
PARIS = ZoneInfo("Europe/Paris")
FIELDS = ["production", "performance_id", "performance_at", "discipline", "tariff", "quantity", "departement"]


def agreement(directory: Path, partner: str, fields: list[str], k: int = 10, clicks: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    types = ["ticket.order_placed", *(["campaign.email_clicked"] if clicks else [])]
    (directory / f"{partner}.yaml").write_text(yaml.safe_dump({
        "id": f"dsa-{partner}", "provider_venues": list(VENUES), "partner": partner,
        "purposes": ["cross_venue_analytics", "marketing"], "event_types": types,
        "allowed_fields": [*fields, *(["campaign_id"] if clicks else [])], "retention_days": 3650,
        "valid_from": "2020-01-01", "valid_until": "2030-12-31",
        "min_cell_size": k}))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("insights")
    agreement(root / "agreements", PARTNER, FIELDS, clicks=True)
    agreement(root / "agreements", NO_DEPT, [f for f in FIELDS if f != "departement"])
    return Settings(data_dir=root / "data", agreements_dir=root / "agreements")


@pytest.fixture(scope="module")
def store(env: Settings) -> Iterator[ChdbStore]:
    with open_store(env, PARTNER) as opened:  # the sink's tables, email_clicks included
        opened.use(PARTNER)
        yield opened


def orders_spec(env: Settings, partner: str = PARTNER) -> Any:
    return partner_tables(partner, load_agreements(env.agreements_dir)).orders


def clicks_spec(env: Settings) -> Any:
    return partner_tables(PARTNER, load_agreements(env.agreements_dir)).clicks


def reload(store: ChdbStore, env: Settings, orders: list[dict[str, Any]], clicks: list[dict[str, Any]]) -> None:
    store.command(f"TRUNCATE TABLE {PARTNER}.ticket_orders")
    store.command(f"TRUNCATE TABLE {PARTNER}.email_clicks")
    sample.insert(store, orders_spec(env), orders)
    sample.insert(store, clicks_spec(env), clicks)


# --- an independent oracle: the definitions of insights/cells.py, computed in plain Python --------------------


def season_of(ts: datetime) -> int:
    local = ts.astimezone(PARIS)
    return local.year - (1 if local.month < 9 else 0)


def oracle(orders: list[dict[str, Any]], clicks: list[dict[str, Any]]) -> tuple[dict[CellId, frozenset[str]],
                                                                                 list[Partition]]:
    rows = [o for o in orders if o["purpose"] == "cross_venue_analytics"]
    at: dict[tuple[int, str], set[str]] = defaultdict(set)
    perfs: dict[tuple[int, str, str], set[str]] = defaultdict(set)
    dept: dict[tuple[int, str, str], tuple[datetime, str]] = {}
    for o in rows:
        s, p = season_of(o["performance_at"]), o["subject_pseudonym"]
        for v in (o["venue_id"], "*"):
            at[(s, v)].add(p)
            perfs[(s, v, p)].add(f"{o['venue_id']}/{o['performance_id']}")
            if o["departement"] is not None:
                cur = dept.get((s, v, p))
                cand = (o["occurred_at"], o["departement"])
                if cur is None or cand > cur:
                    dept[(s, v, p)] = cand
    cells: dict[CellId, frozenset[str]] = {}
    parts: list[Partition] = []

    def put(insight: str, key: tuple[Any, ...], persons: set[str]) -> None:
        if persons:
            cells[(insight, key)] = frozenset(persons)

    first_season = min((s for s, _ in at), default=0)
    for (s, v), persons in at.items():
        if v != "*":
            for (s2, w), others in at.items():
                if s2 == s and w != "*" and v <= w:
                    put("overlap", (s, v, w), persons & others)
        spectators = ("loyalty", (s, v, "spectators"))
        put("loyalty", (s, v, "spectators"), persons)
        if s > first_season:
            earlier = {p for (s2, w), ps in at.items() if w == v and s2 < s for p in ps}
            put("loyalty", (s, v, "first_time"), persons - earlier)
            put("loyalty", (s, v, "returning"), persons & earlier)
            parts.append(Partition(spectators, (("loyalty", (s, v, "first_time")), ("loyalty", (s, v, "returning")))))
        bounds = {"freq_1": (1, 1), "freq_2": (2, 2), "freq_3-5": (3, 5), "freq_6+": (6, math.inf)}
        for name in FREQUENCY:
            lo, hi = bounds[name]
            put("loyalty", (s, v, name), {p for p in persons if lo <= len(perfs[(s, v, p)]) <= hi})
        parts.append(Partition(spectators, tuple(("loyalty", (s, v, n)) for n in FREQUENCY)))
        if (s - 1, v) in at:
            put("loyalty", (s, v, "lapsed"), at[(s - 1, v)] - persons)
        by_dept: dict[str, set[str]] = defaultdict(set)
        for p in persons:
            by_dept[dept[(s, v, p)][1] if (s, v, p) in dept else "?"].add(p)
        for d, ps in by_dept.items():
            put("geography", (s, v, d), ps)
        parts.append(Partition(spectators, tuple(("geography", (s, v, d)) for d in by_dept)))
    disc: dict[tuple[int, str], set[str]] = defaultdict(set)
    lead: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for o in rows:
        disc[(season_of(o["performance_at"]), o["discipline"])].add(o["subject_pseudonym"])
        days = (o["performance_at"].astimezone(PARIS).date() - o["occurred_at"].astimezone(PARIS).date()).days
        for t in (o["tariff"], "*"):
            lead[(o["discipline"], t)][o["subject_pseudonym"]].append(days)
    for (s, a), pa in disc.items():
        for (s2, b), pb in disc.items():
            if s2 == s and a <= b:
                put("crossover", (s, a, b), pa & pb)
    for key, per_person in lead.items():
        put("lead_time", key, set(per_person))
    for c in clicks:
        p, v = c["subject_pseudonym"], c["venue_id"]
        key = (v, c["campaign_id"])
        cells.setdefault(("conversion", (*key, "clicked")), frozenset())
        cells[("conversion", (*key, "clicked"))] |= {p}
        if any(o["venue_id"] == v and o["subject_pseudonym"] == p
               and c["occurred_at"] < o["occurred_at"] <= c["occurred_at"] + timedelta(days=7) for o in rows):
            cells[("conversion", (*key, "converted"))] = cells.get(("conversion", (*key, "converted")),
                                                                   frozenset()) | {p}
    return cells, parts


def lead_medians(orders: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    per: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for o in orders:
        days = (o["performance_at"].astimezone(PARIS).date() - o["occurred_at"].astimezone(PARIS).date()).days
        for t in (o["tariff"], "*"):
            per[(o["discipline"], t)][o["subject_pseudonym"]].append(days)
    return {key: low_quantile([low_quantile(v, 0.5) for v in people.values()], 0.5) for key, people in per.items()}


def assert_protected(release: Release, orders: list[dict[str, Any]], clicks: list[dict[str, Any]]) -> None:
    """The release equals the oracle cell for cell, and every protection guarantee holds on the
    oracle's person sets (so a wrong SQL view could not hide a small cell)."""
    expected, partitions = oracle(orders, clicks)
    got = release.protected
    assert set(got.cells) == set(expected)
    for cid, persons in expected.items():
        assert got.cells[cid].size == len(persons), cid
    ids: dict[str, int] = {}
    as_ints = [Cell(cid[0], cid[1], frozenset(ids.setdefault(p, len(ids)) for p in persons))
               for cid, persons in expected.items()]
    check_release(Protected(got.k, {c.id: c for c in as_ints}, dict(got.suppressed)), partitions)
    medians = lead_medians([o for o in orders if o["purpose"] == "cross_venue_analytics"])
    for c in release.cells("lead_time"):
        assert dict(c.measures)["median_days"] == medians[c.key]  # type: ignore[index]


# --- data --------------------------------------------------------------------------------------------------------


def order(person: int, venue: int, season: int, perf: int, discipline: int, tariff: int, dept: int, lead: int,
          purpose: str = "cross_venue_analytics") -> dict[str, Any]:
    start = 2024 + season
    # performance 3 starts at 00:30 Paris on 1 September: the next season
    perf_at = (datetime(start + 1, 8, 31, 22, 30, tzinfo=UTC) if perf == 3
               else datetime(start, 10, 1, 18, tzinfo=UTC) + timedelta(days=40 * perf + 7 * venue))
    at = perf_at - timedelta(days=lead, hours=3)
    return {"event_id": str(uuid.uuid4()), "event_type": "ticket.order_placed", "occurred_at": at,
            "received_at": at, "venue_id": VENUES[venue], "agreement_id": f"dsa-{PARTNER}", "purpose": purpose,
            "subject_pseudonym": f"{person:064x}", "pseudonym_key_version": 1, "production": f"prod-{perf}",
            "performance_id": f"{VENUES[venue]}-{start}-{perf}", "performance_at": perf_at,
            "discipline": DISCIPLINES[discipline], "tariff": TARIFFS[tariff], "quantity": 1,
            "departement": DEPTS[dept]}


def click(person: int, venue: int, campaign: int, at: datetime) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_type": "campaign.email_clicked", "occurred_at": at,
            "received_at": at, "venue_id": VENUES[venue], "agreement_id": "x", "purpose": "cross_venue_analytics",
            "subject_pseudonym": f"{person:064x}", "pseudonym_key_version": 1, "campaign_id": f"c{campaign}"}


def orders_of(profiles: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    """Persons with a profile: which venues (bit mask), which seasons (bit mask), département,
    discipline, tariff, performances per venue and season, lead time. Persons drawn with the same
    profile make near-identical groups, hence nested cells a few persons apart."""
    rows = []
    for person, (venues, seasons, dept, discipline, tariff, performances, lead) in enumerate(profiles):
        for venue in range(3):
            for season in range(2):
                if venues >> venue & 1 and seasons >> season & 1:
                    rows += [order(person, venue, season, perf, (discipline + perf) % 3 if perf > 1 else discipline,
                                   tariff, dept, lead + perf) for perf in range(performances)]
    return rows


profile_st = st.tuples(st.integers(1, 7), st.integers(1, 3), st.integers(0, 3), st.integers(0, 2), st.integers(0, 1),
                       st.integers(1, 4), st.integers(0, 40))
profiles_st = st.lists(st.tuples(profile_st, st.integers(1, 12)), min_size=1, max_size=6).map(
    lambda groups: [profile for profile, n in groups for _ in range(n)])


# --- tests -------------------------------------------------------------------------------------------------------


def test_views_and_engine_agree_with_the_oracle_on_sample_data(store: ChdbStore, env: Settings) -> None:
    orders = sample.orders(persons=300, seed=5, agreement_id=f"dsa-{PARTNER}")
    clicks = sample.clicks(orders, seed=6)
    reload(store, env, orders, clicks)
    release = release_from_store(store, PARTNER, 10)
    assert release.unavailable == {"attendance": ["ticket_scans"], "campaign_funnel": ["campaign_events"],
                                   "acquisition": ["page_views", "ad_spend"],
                                   "web_before_purchase": ["page_views | content_interactions"]}, (
        "this partner is shared neither entrance scans, campaign sends, page views nor ad spend")
    assert_protected(release, orders, clicks)
    # the aggregate views (threshold only) give the same numbers as the unprotected cells
    size = {cid: c.size for cid, c in release.protected.cells.items()}
    for season, a, b, persons in store.query("SELECT * FROM insights_overlap"):
        assert persons == (size[("overlap", (season, a, b))] if size[("overlap", (season, a, b))] >= 10 else None)
    names = ["spectators", "first_time", "returning", "freq_1", "freq_2", "freq_3-5", "freq_6+", "lapsed"]
    for season, venue, *values in store.query("SELECT * FROM insights_loyalty"):
        for name, value in zip(names, values, strict=True):
            n = size.get(("loyalty", (season, venue, name)), 0)
            assert value == (n if n >= 10 else None), (season, venue, name)
    for season, venue, dept, persons in store.query("SELECT * FROM insights_geography"):
        n = size[("geography", (season, venue, dept))]
        assert persons == (n if n >= 10 else None)
    for discipline, tariff, persons, median in store.query("SELECT * FROM insights_lead_time"):
        cell = release.protected.cells[("lead_time", (discipline, tariff))]
        assert (persons, median) == ((cell.size, dict(cell.measures)["median_days"]) if cell.size >= 10
                                     else (None, None))
    for venue, campaign, clicked, converted in store.query("SELECT * FROM insights_conversion"):
        n, m = size[("conversion", (venue, campaign, "clicked"))], size.get(("conversion", (venue, campaign,
                                                                                             "converted")), 0)
        assert (clicked, converted) == (n if n >= 10 else None, m if m >= 10 else None)
    assert store.query("SELECT count() FROM insights_crossover") != [(0,)]


def test_the_read_only_path_gives_the_same_release(store: ChdbStore, env: Settings) -> None:
    """``release_from_reader`` (views inlined, readonly = 1, no CREATE VIEW) = ``release_from_store``."""
    orders = sample.orders(persons=200, seed=8, agreement_id=f"dsa-{PARTNER}")
    reload(store, env, orders, sample.clicks(orders, seed=9))
    direct = release_from_store(store, PARTNER, 10)
    session = ReadOnlySession(store.path, PARTNER, max_rows=1_000_000, timeout_s=60)
    try:
        read = release_from_reader(SessionReader(session), PARTNER, 10)
    finally:
        session.close()
    def shape(release: Release) -> dict[Any, Any]:  # person ids are interned in read order: compare sizes
        return {cid: (c.size, c.measures, release.protected.value(cid)) for cid, c in release.protected.cells.items()}

    assert shape(read) == shape(direct) and shape(read)
    assert read.unavailable == direct.unavailable


def test_only_rows_shared_for_cross_venue_analytics_are_read(store: ChdbStore, env: Settings) -> None:
    analytics = [order(p, p % 3, 0, 0, 0, 0, 0, 10) for p in range(30)]
    marketing = [order(p, 1, 0, 1, 1, 1, 1, 5, purpose="marketing") for p in range(30, 60)]
    reload(store, env, analytics + marketing, [])
    release = release_from_store(store, PARTNER, 5)
    assert release.protected.cells[("loyalty", (2024, "*", "spectators"))].size == 30
    assert_protected(release, analytics + marketing, [])


def test_views_are_not_erasure_targets_and_erasure_shows_at_once(store: ChdbStore, env: Settings) -> None:
    reload(store, env, [order(p, 0, 0, 0, 0, 0, 0, 10) for p in range(12)], [])
    tables = partner_tables(PARTNER, load_agreements(env.agreements_dir))
    handler = EraseHandler(store, tables, None, None, topic="partner.obs.erasure")  # type: ignore[arg-type]
    assert handler.tables_to_erase() == ["email_clicks", "ticket_orders"]
    assert release_from_store(store, PARTNER, 10).protected.value(("loyalty", (2024, "*", "spectators"))) == 12
    store.command(f"DELETE FROM {PARTNER}.ticket_orders WHERE subject_pseudonym = {{p:String}}", {"p": f"{0:064x}"})
    release = release_from_store(store, PARTNER, 10)
    assert release.protected.cells[("loyalty", (2024, "*", "spectators"))].size == 11


def test_an_insight_needing_a_field_the_agreements_do_not_share_is_unavailable(store: ChdbStore,
                                                                                env: Settings) -> None:
    spec = orders_spec(env, NO_DEPT)
    ensure_table(store, spec)
    for t in partner_tables(NO_DEPT, load_agreements(env.agreements_dir)).all:
        ensure_table(store, t)
    rows = [{k: v for k, v in order(p, p % 2, 0, 0, 0, 0, 0, 3).items() if k != "departement"} for p in range(20)]
    sample.insert(store, spec, rows)
    release = release_from_store(store, NO_DEPT, 10)
    assert release.unavailable == {"geography": ["departement"], "conversion": ["email_clicks"],
                                   "attendance": ["ticket_scans"],
                                   "campaign_funnel": ["campaign_events", "email_clicks"],
                                   "acquisition": ["page_views", "ad_spend"],
                                   "web_before_purchase": ["page_views | content_interactions"]}
    assert not release.cells("geography")
    assert "indisponible" in render.text(release, "geography")
    assert release.protected.value(("loyalty", (2024, "*", "spectators"))) == 20
    store.use(PARTNER)


def test_k_comes_from_the_strictest_agreement(env: Settings, tmp_path: Path) -> None:
    agreement(tmp_path, "pp", ["production"], k=10)
    strict = yaml.safe_load((tmp_path / "pp.yaml").read_text())
    (tmp_path / "q.yaml").write_text(yaml.safe_dump({**strict, "id": "dsa-q", "min_cell_size": 25}))
    k, comparable = partner_terms(load_agreements(tmp_path), "pp")
    assert k == 25 and comparable("chaillot", "gemeaux")
    shared = {**strict, "id": "dsa-r", "provider_venues": ["mixt"], "pseudonym_domain": "shared-domain"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(shared))
    _, comparable = partner_terms(load_agreements(tmp_path), "pp")
    assert comparable("chaillot", "gemeaux") and not comparable("chaillot", "mixt")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(profiles=profiles_st, clicks=st.lists(st.tuples(st.integers(0, 24), st.integers(0, 2), st.integers(0, 1),
                                                   st.integers(0, 9)), max_size=40),
       k=st.sampled_from([3, 5, 10]))
def test_no_output_cell_below_k_even_by_differencing(store: ChdbStore, env: Settings,
                                                      profiles: list[tuple[int, ...]],
                                                      clicks: list[tuple[int, ...]], k: int) -> None:
    """Rare combinations (few persons, three venues, two seasons, a season boundary at midnight
    Paris time, a rare département): whatever the data, no published cell counts fewer than k
    persons, no two published nested cells differ by fewer than k, and two different selections
    the CLI offers are parts of the same protected release."""
    rows = orders_of(profiles)
    base = datetime(2024, 10, 1, tzinfo=UTC)
    click_rows = [click(p, v, c, base + timedelta(days=d * 7)) for p, v, c, d in clicks]
    reload(store, env, rows, click_rows)
    release = release_from_store(store, PARTNER, k)
    assert_protected(release, rows, click_rows)
    for reason in sorted(set(release.protected.suppressed.values())):
        event(f"suppressed for {reason}")
    everything = {(i, tuple(sorted(c.items()))) for i in ("overlap", "geography")
                  for c in render.insight_json(release, i)["cells"]}
    for insight in ("overlap", "geography"):
        for selection in ({"venue": "chaillot"}, {"season": 2024}):
            shown = render.insight_json(release, insight, **selection)["cells"]  # type: ignore[arg-type]
            assert all(c["persons"] >= k for c in shown)
            assert {(insight, tuple(sorted(c.items()))) for c in shown} <= everything


def test_publish_keeps_the_latest_release_only_and_the_dashboard_queries_run(store: ChdbStore,
                                                                             env: Settings) -> None:
    orders = sample.orders(persons=300, seed=5, agreement_id=f"dsa-{PARTNER}")
    reload(store, env, orders, sample.clicks(orders, seed=6))
    release = release_from_store(store, PARTNER, 10)
    assert publish(store, release) == publish(store, release)  # replaced, not appended
    rows = store.query(f"SELECT insight, season, key_a, key_b, measure, value FROM {PARTNER}.insights_release "
                       "WHERE insight != 'protection'")
    shown = [c for cid, c in release.protected.cells.items() if release.protected.published(cid)]
    assert len(rows) == len(shown) and all(value >= 10 for *_, value in rows)
    assert ("overlap", 2025, "chaillot", "gemeaux", "persons",
            release.protected.cells[("overlap", (2025, "chaillot", "gemeaux"))].size) in rows
    ((suppressed,),) = store.query(f"SELECT sum(value) FROM {PARTNER}.insights_release "
                                   "WHERE insight = 'protection' AND measure = 'suppressed'")
    assert suppressed == len(release.protected.suppressed)
    for panel in grafana.dashboard()["panels"]:
        sql = panel["targets"][0]["rawSql"].replace("${partner}", PARTNER).replace("${season}", "2025")
        if any(f"'{name}'" in sql for name in ("attendance", "campaign_funnel", "acquisition", "web_before_purchase")):
            # not shared with this partner: the query runs and finds nothing
            assert store.query(sql) == [], panel["title"]
            continue
        assert store.query(sql), panel["title"]
