"""Cost per new spectator by channel and web / content before a first purchase (issue 16): the
attribution rule, the cells and their protection (hypothesis differencing tests), and both on a
real chDB venue store built by the sinks' own table definitions (:func:`sinks.tables.venue_tables`),
through the writable path (views) and the read-only one (``WITH`` clause)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insights.cells import ALL, Persons, acquisition_cells, browsing_cells
from insights.engine import release_from_reader, release_from_store
from insights.protect import protect
from insights.publish import rows as release_rows
from insights.render import rows
from insights.views import channel_of, channel_sql
from schemas.kinds import MEASUREMENT_PURPOSE, OWN_PURPOSE
from sinks.chdb import ChdbStore
from sinks.migrate import ensure_partner
from sinks.read_server import ReadOnlySession
from sinks.reader import SessionReader
from sinks.tables import venue_tables
from tests.support.insights import check_release

CHANNELS = [("facebook", None, "meta"), ("Meta", "www.google.com", "meta"), ("google", None, "google_ads"),
            ("brevo", None, "brevo"), (None, "www.google.fr", "search"), (None, "l.facebook.com", "social"),
            (None, "blog.example.org", "referral"), (None, None, "direct"), ("", "", "direct"),
            ("  IG ", None, "meta"), (None, "duckduckgo.com", "search")]


def test_attribution_channel_rule_in_python_and_in_sql_agree(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "ch")
    try:
        for source, referrer, expected in CHANNELS:
            assert channel_of(source, referrer) == expected
            literal = [("CAST(NULL AS Nullable(String))" if v is None else f"'{v}'") for v in (source, referrer)]
            ((got,),) = store.query(f"SELECT {channel_sql(*literal)}")
            assert got == expected, (source, referrer)
    finally:
        store.close()


def test_new_spectators_are_partitioned_by_channel() -> None:
    data = [("v1", "2026-10", "a", "meta"), ("v1", "2026-10", "b", "untracked"), ("v1", "2026-11", "c", "meta")]
    cells, partitions = acquisition_cells(data, Persons())
    sizes = {c.key: c.size for c in cells}
    assert sizes == {("v1", "2026-10", "meta"): 1, ("v1", "2026-10", "untracked"): 1, ("v1", "2026-10", ALL): 2,
                     ("v1", "2026-11", "meta"): 1, ("v1", "2026-11", ALL): 1}
    assert {p.parent[1] for p in partitions} == {("v1", "2026-10", ALL), ("v1", "2026-11", ALL)}


@st.composite
def first_buyers(draw: st.DrawFn) -> list[tuple[str, str, str, str]]:
    n = draw(st.integers(5, 90))
    return [(draw(st.sampled_from(["v1", "v2"])), draw(st.sampled_from(["2026-10", "2026-11"])), f"p{i}",
             draw(st.sampled_from(["meta", "google_ads", "direct", "untracked"]))) for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(first_buyers(), st.sampled_from([3, 5, 10]))
def test_no_published_acquisition_cell_and_no_difference_of_two_is_below_k(
        data: list[tuple[str, str, str, str]], k: int) -> None:
    cells, partitions = acquisition_cells(data, Persons())
    check_release(protect(cells, partitions, k), partitions)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["v1", "v2"]), st.integers(0, 50), st.sampled_from(["page", "content"]),
                          st.sampled_from(["/a", "/b", "/c", "VID-1"])), min_size=1, max_size=200),
       st.sampled_from([3, 5, 10]))
def test_no_published_browsing_cell_and_no_difference_of_two_is_below_k(
        data: list[tuple[str, int, str, str]], k: int) -> None:
    cells = browsing_cells([(v, f"p{p}", kind, item) for v, p, kind, item in data], Persons())
    check_release(protect(cells, [], k), [])


FIRST = datetime(2026, 10, 15, 18, 0, tzinfo=UTC)


class VenueStore:
    """Rows written into a real venue store (database ``venue_v1``) the way its sink shapes them."""

    def __init__(self, store: ChdbStore) -> None:
        self.store = store

    def add(self, table: str, person: str, at: datetime, purpose: str = OWN_PURPOSE, **fields: Any) -> None:
        base = {"event_id": str(uuid.uuid4()), "occurred_at": at.strftime("%Y-%m-%d %H:%M:%S"),
                "received_at": at.strftime("%Y-%m-%d %H:%M:%S"), "venue_id": "v1", "agreement_id": "venue:v1",
                "purpose": purpose, "subject_pseudonym": person, "pseudonym_key_version": 1, **fields}
        values = ", ".join("NULL" if v is None else f"'{v}'" if isinstance(v, str) else str(v) for v in base.values())
        self.store.command(f"INSERT INTO venue_v1.{table} ({', '.join(base)}) VALUES ({values})")  # noqa: S608

    def order(self, person: str, at: datetime) -> None:
        self.add("ticket_orders", person, at, event_type="ticket.order_placed", status="placed",
                 order_ref=f"o-{person}-{at:%m%d}", quantity=1, performance_id="p1")

    def view(self, person: str, days_before: float, path: str, source: str | None = None,
             purpose: str = "marketing") -> None:
        self.add("page_views", person, FIRST - timedelta(days=days_before), purpose, event_type="web.page_viewed",
                 page_path=path, utm_source=source, referrer_host=None)

    def spend(self, day: str, platform: str, minor: int, currency: str = "EUR") -> None:
        self.add("ad_spend", "", datetime.fromisoformat(day).replace(tzinfo=UTC), event_type="ads.spend_reported",
                 day=day, platform=platform, spend_minor=minor, currency=currency)


@pytest.fixture
def venue_store(tmp_path: Path) -> Any:
    store = ChdbStore(tmp_path / "v1")
    ensure_partner(store, venue_tables("v1"))
    s = VenueStore(store)
    for i in range(12):  # first touch meta (then google): meta; saw /a, /b and the video
        s.order(f"meta-{i}", FIRST)
        s.view(f"meta-{i}", 10, "/programmation/a", "facebook")
        s.view(f"meta-{i}", 2, "/programmation/b", "google")
        s.add("content_interactions", f"meta-{i}", FIRST - timedelta(days=3), "marketing",
              event_type="web.content_interacted", content_id="VID-A", action="play")
    for i in range(11):
        s.order(f"goo-{i}", FIRST)
        s.view(f"goo-{i}", 5, "/programmation/b", "google")
    for i in range(3):
        s.order(f"dir-{i}", FIRST)
        s.view(f"dir-{i}", 1, "/billetterie")
    for i in range(4):  # seen only 40 days before: out of the window, untracked
        s.order(f"old-{i}", FIRST)
        s.view(f"old-{i}", 40, "/old", "facebook")
    for i in range(6):  # no page view under a consent: untracked, even with exempt-measurement-like rows
        s.order(f"anon-{i}", FIRST)
        s.view(f"anon-{i}", 3, "/programmation/a", "facebook", purpose=MEASUREMENT_PURPOSE)
    for i in range(10):  # returning: first order in August, so not new in October
        s.order(f"back-{i}", datetime(2026, 8, 20, tzinfo=UTC))
        s.order(f"back-{i}", FIRST)
        s.view(f"back-{i}", 4, "/programmation/a", "facebook")
    s.spend("2026-10-03", "meta", 30000)
    s.spend("2026-10-20", "facebook", 20000)
    s.spend("2026-10-04", "google_ads", 33000)
    s.spend("2026-10-05", "tiktok", 10000)
    s.spend("2026-10-06", "meta", 99999, currency="USD")
    s.spend("2026-09-06", "meta", 5000)
    yield store
    store.close()


def test_cost_per_new_spectator_on_a_real_venue_store(venue_store: ChdbStore) -> None:
    release = release_from_store(venue_store, "venue:v1", 10)
    assert release.k == 10 and "acquisition" not in release.unavailable
    sizes = {c.key: c.size for c in release.cells("acquisition")}
    assert sizes[("v1", "2026-10", "meta")] == 12 and sizes[("v1", "2026-10", "google_ads")] == 11
    assert sizes[("v1", "2026-10", "direct")] == 3 and sizes[("v1", "2026-10", "untracked")] == 10
    assert sizes[("v1", "2026-10", ALL)] == 36, "returning buyers are not new"
    assert sizes[("v1", "2026-08", "untracked")] == 10
    shown = {c.key[2] for c in release.cells("acquisition")
             if c.key[1] == "2026-10" and release.protected.published(c.id)}
    # direct (3) is below k; alone hidden it would be * minus the rest: untracked is hidden with it
    assert shown == {ALL, "meta", "google_ads"}
    assert release.protected.suppressed[("acquisition", ("v1", "2026-10", "untracked"))] == "complementary"
    assert release.spend == {("v1", "2026-10", "meta"): 50000, ("v1", "2026-10", "google_ads"): 33000,
                             ("v1", "2026-10", "tiktok"): 10000, ("v1", "2026-09", "meta"): 5000}
    header, body = rows(release, "acquisition", "fr")
    assert header == ["lieu", "mois", "canal", "nouveaux spectateurs", "dépense publicitaire",
                      "coût par nouveau spectateur"]
    assert ["v1", "2026-10", "meta", "12", "500,00 €", "41,66 €"] in body
    assert ["v1", "2026-10", "google_ads", "11", "330,00 €", "30,00 €"] in body
    assert ["v1", "2026-10", "tous canaux", "36", "930,00 €", "25,83 €"] in body
    assert ["v1", "2026-10", "tiktok", "—", "100,00 €", "—"] in body, "spend shown, no count to divide by"
    assert not any(r[2] in ("accès direct", "direct") for r in body), "a suppressed cell is never named"
    published = [r for r in release_rows(release) if r["insight"] in ("acquisition", "ad_spend")]
    assert {"insight": "acquisition", "key_a": "v1", "key_b": "2026-10", "measure": "meta", "value": 12}.items() \
        <= next(r for r in published if r["insight"] == "acquisition" and r["measure"] == "meta").items()
    ((new, spend, cost),) = venue_store.query(
        "SELECT new_buyers, spend_minor, cost_minor FROM venue_v1.insights_cost_per_new "
        "WHERE month = '2026-10' AND channel = 'meta'")
    assert (new, spend, cost) == (12, 50000, 4166)


def test_web_before_first_purchase_on_a_real_venue_store(venue_store: ChdbStore) -> None:
    release = release_from_store(venue_store, "venue:v1", 10)
    sizes = {c.key: c.size for c in release.cells("web_before_purchase")}
    assert sizes == {("v1", ALL, ALL): 26, ("v1", "page", "/programmation/a"): 12,
                     ("v1", "page", "/programmation/b"): 23, ("v1", "page", "/billetterie"): 3,
                     ("v1", "content", "VID-A"): 12}, "outside 30 days, unconsented, returning: not counted"
    suppressed = release.protected.suppressed
    assert suppressed[("web_before_purchase", ("v1", "page", "/programmation/b"))] == "differencing"  # 26 - 23 < k
    assert suppressed[("web_before_purchase", ("v1", "page", "/billetterie"))] == "threshold"
    header, body = rows(release, "web_before_purchase", "en")
    assert header == ["venue", "kind", "page or content", "persons", "share"]
    assert body == [["v1", "at least one page or content", "—", "26", "100 %"],
                    ["v1", "page", "/programmation/a", "12", "46 %"], ["v1", "content", "VID-A", "12", "46 %"]]


def test_the_read_only_path_gives_the_same_release(venue_store: ChdbStore, tmp_path: Path) -> None:
    written = release_from_store(venue_store, "venue:v1", 10)
    venue_store.close()
    session = ReadOnlySession(tmp_path / "v1", "venue_v1", max_rows=100000, timeout_s=30)
    try:
        read = release_from_reader(SessionReader(session), "venue:v1", 10)
    finally:
        session.close()
    for insight in ("acquisition", "web_before_purchase"):
        assert {c.id: c.size for c in read.cells(insight)} == {c.id: c.size for c in written.cells(insight)}
    assert read.spend == written.spend


def test_the_html_report_charts_the_cost_and_never_names_a_suppressed_page(venue_store: ChdbStore) -> None:
    from insights.html import report

    page = report(release_from_store(venue_store, "venue:v1", 10), "fr")
    assert 'data-chart="acquisition"' in page and page.count("<svg data-chart=") == 4
    chart = page[page.index('data-chart="acquisition"'):]
    chart = chart[:chart.index("</svg>")]
    assert "v1 · meta" in chart and "41,66 €" in chart and "30,00 €" in chart
    assert "v1 · tiktok" in chart and 'fill="url(#hatch3)"' in chart, "spend without a published count: hatched"
    assert "Coût par nouveau spectateur, par canal" in page and "Pages et contenus vus avant le premier achat" in page
    assert "/programmation/a" in page and "/billetterie" not in page and "/programmation/b" not in page


def test_content_before_first_purchase_without_page_views(tmp_path: Path) -> None:
    """A partner whose agreements share content interactions but no page views still gets the
    contents seen before a first order (the insight used to be 'unavailable: page_views')."""
    from datetime import date

    from insights import PURPOSE
    from schemas.agreements import Agreement
    from sinks.tables import partner_tables

    agreement = Agreement.model_validate({
        "id": "dsa-co", "provider_venues": ["v1"], "partner": "co", "purposes": [PURPOSE],
        "event_types": ["ticket.order_placed", "web.content_interacted"],
        "allowed_fields": ["content_id", "quantity"], "retention_days": 3650,
        "valid_from": date(2020, 1, 1), "valid_until": date(2030, 1, 1)})
    store = ChdbStore(tmp_path / "co")
    try:
        ensure_partner(store, partner_tables("co", [agreement]))
        s = VenueStore(store)
        for i in range(12):
            for table, at, fields in (
                    ("ticket_orders", FIRST, {"event_type": "ticket.order_placed", "status": "placed",
                                              "order_ref": f"o{i}", "quantity": 1}),
                    ("content_interactions", FIRST - timedelta(days=3),
                     {"event_type": "web.content_interacted", "content_id": "VID-A"})):
                base = {"event_id": str(uuid.uuid4()), "occurred_at": at.strftime("%Y-%m-%d %H:%M:%S"),
                        "received_at": at.strftime("%Y-%m-%d %H:%M:%S"), "venue_id": "v1", "agreement_id": "dsa-co",
                        "purpose": PURPOSE, "subject_pseudonym": f"c{i}", "pseudonym_key_version": 1, **fields}
                values = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in base.values())
                s.store.command(f"INSERT INTO co.{table} ({', '.join(base)}) VALUES ({values})")  # noqa: S608
        release = release_from_store(store, "co", 10)
        assert "web_before_purchase" not in release.unavailable
        sizes = {c.key: c.size for c in release.cells("web_before_purchase")}
        assert sizes == {("v1", ALL, ALL): 12, ("v1", "content", "VID-A"): 12}
    finally:
        store.close()
