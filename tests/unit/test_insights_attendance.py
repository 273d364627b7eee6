"""The attendance / no-show insight (issue 16): cells from ticket holders and entrance scans,
protected with the rest of a release (k, differencing, complementary suppression), and its
views on a real chDB store built by the sinks' own table definitions."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from insights import PURPOSE
from insights.cells import ALL, Persons, attendance_cells
from insights.engine import release_from_store
from insights.protect import protect
from insights.render import rows
from schemas.agreements import Agreement
from sinks.chdb import ChdbStore
from sinks.migrate import ensure_partner
from sinks.tables import partner_tables
from tests.support.insights import check_release


def test_holders_split_into_attended_and_no_shows_per_performance_and_venue() -> None:
    person = Persons()
    data = [("v1", "p1", "a", 1), ("v1", "p1", "b", 0), ("v1", "p2", "a", 0), ("v1", "p2", "c", 1)]
    cells, partitions = attendance_cells(data, person)
    sizes = {c.key: c.size for c in cells}
    assert sizes[("v1", "p1", "holders")] == 2 and sizes[("v1", "p1", "attended")] == 1
    assert sizes[("v1", "p1", "no_show")] == 1
    # per venue: a (missed p2) and b are no-shows, c attended all of hers
    assert (sizes[("v1", ALL, "holders")], sizes[("v1", ALL, "attended")], sizes[("v1", ALL, "no_show")]) == (3, 1, 2)
    for part in partitions:
        assert part.parent[1][2] == "holders" and {c[1][2] for c in part.children} <= {"attended", "no_show"}


@st.composite
def attendance(draw: st.DrawFn) -> list[tuple[str, str, str, int]]:
    n = draw(st.integers(10, 60))
    return [(draw(st.sampled_from(["v1", "v2"])), draw(st.sampled_from(["p1", "p2", "p3"])), f"person-{i}",
             int(draw(st.booleans()))) for i in range(n) for _ in range(draw(st.integers(1, 2)))]


@settings(max_examples=200, deadline=None)
@given(attendance(), st.sampled_from([3, 5, 10]))
def test_no_published_attendance_cell_and_no_difference_of_two_is_below_k(
        data: list[tuple[str, str, str, int]], k: int) -> None:
    cells, partitions = attendance_cells(data, Persons())
    check_release(protect(cells, partitions, k), partitions)


def _agreement() -> Agreement:
    return Agreement.model_validate({
        "id": "dsa-att", "provider_venues": ["v1"], "partner": "att", "purposes": [PURPOSE],
        "event_types": ["ticket.order_placed", "ticket.order_refunded", "attendance.ticket_scanned"],
        "allowed_fields": ["performance_id", "quantity", "result"], "retention_days": 3650,
        "valid_from": date(2020, 1, 1), "valid_until": date(2030, 1, 1)})


def _row(table: str, person: str, later: int = 0, **fields: Any) -> str:
    at = datetime.now(UTC) - timedelta(days=3) + timedelta(hours=later)
    base = {"event_id": str(uuid.uuid4()), "occurred_at": at.strftime("%Y-%m-%d %H:%M:%S"),
            "received_at": at.strftime("%Y-%m-%d %H:%M:%S"), "venue_id": "v1", "agreement_id": "dsa-att",
            "purpose": PURPOSE, "subject_pseudonym": person, "pseudonym_key_version": 1, **fields}
    columns = ", ".join(base)
    values = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in base.values())
    return f"INSERT INTO att.{table} ({columns}) VALUES ({values})"  # noqa: S608


def test_no_show_views_on_a_real_store_count_refunded_holders_out(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "att")
    try:
        ensure_partner(store, partner_tables("att", [_agreement()]))
        for i in range(30):  # 30 holders of p1; 20 scanned in; 4 of the no-shows refunded
            person = f"holder-{i:02d}"
            store.command(_row("ticket_orders", person, event_type="ticket.order_placed", status="placed",
                               order_ref=f"o{i}", performance_id="p1", quantity=1))
            if i < 20:
                store.command(_row("ticket_scans", person, event_type="attendance.ticket_scanned",
                                   performance_id="p1", result="admitted"))
            elif i >= 26:
                store.command(_row("ticket_orders", person, later=2, event_type="ticket.order_refunded",
                                   status="refunded", order_ref=f"o{i}"))
        release = release_from_store(store, "att", 5)
        assert "attendance" not in release.unavailable
        sizes = {c.key: c.size for c in release.cells("attendance") if release.protected.published(c.id)}
        assert sizes[("v1", "p1", "holders")] == 26, "refunded tickets no longer count"
        assert sizes[("v1", "p1", "attended")] == 20 and sizes[("v1", "p1", "no_show")] == 6
        header, body = rows(release, "attendance", "fr")
        assert "taux d'absence" in header and ["v1", "p1", "26", "20", "6", "23 %"] in body
        ((holders, attended, no_show),) = store.query(
            "SELECT holders, admitted, no_show FROM att.insights_no_show WHERE performance_id = 'p1'")
        assert (holders, attended, no_show) == (26, 20, 6)
    finally:
        store.close()


def test_funnel_steps_are_cumulative() -> None:
    from insights.cells import funnel_cells

    rows = [("v1", "c1", "a", 1, 1, 1, 1, 1), ("v1", "c1", "b", 1, 1, 0, 1, 0), ("v1", "c1", "c", 0, 1, 1, 1, 1)]
    sizes = {c.key[2]: c.size for c in funnel_cells(rows, Persons())}
    # b did not open, so b's click does not count further down; c was never seen sent: counts nowhere
    assert sizes == {"sent": 2, "delivered": 2, "opened": 1, "clicked": 1, "ordered": 1}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["v1", "v2"]), st.sampled_from(["c1", "c2"]), st.integers(0, 40),
                          *(st.integers(0, 1) for _ in range(5))), min_size=5, max_size=120),
       st.sampled_from([3, 5, 10]))
def test_no_published_funnel_cell_and_no_difference_of_two_is_below_k(
        rows: list[tuple[Any, ...]], k: int) -> None:
    from insights.cells import funnel_cells

    cells = funnel_cells([(v, c, f"p{p}", *steps) for v, c, p, *steps in rows], Persons())
    check_release(protect(cells, [], k), [])


def test_campaign_funnel_on_a_real_store(tmp_path: Path) -> None:
    agreement = Agreement.model_validate({
        "id": "dsa-fun", "provider_venues": ["v1"], "partner": "fun", "purposes": [PURPOSE],
        "event_types": ["ticket.order_placed", "campaign.email_clicked", "campaign.email_sent",
                        "campaign.email_delivered", "campaign.email_opened"],
        "allowed_fields": ["campaign_id", "machine_open", "quantity"], "retention_days": 3650,
        "valid_from": date(2020, 1, 1), "valid_until": date(2030, 1, 1)})
    store = ChdbStore(tmp_path / "fun")

    def insert(table: str, person: str, later: int = 0, **fields: Any) -> None:
        store.command(_row(table, person, later, **fields).replace("att.", "fun.").replace("dsa-att", "dsa-fun"))

    try:
        ensure_partner(store, partner_tables("fun", [agreement]))
        for i in range(40):  # 40 sent and delivered; 30 opened by people (+5 machine opens); 20 clicked; 12 ordered
            who = f"r{i:02d}"
            insert("campaign_events", who, event_type="campaign.email_sent", campaign_id="C1")
            insert("campaign_events", who, event_type="campaign.email_delivered", campaign_id="C1")
            if i < 35:
                insert("campaign_events", who, event_type="campaign.email_opened", campaign_id="C1",
                       machine_open=int(i >= 30))
            if i < 20:
                insert("email_clicks", who, 1, event_type="campaign.email_clicked", campaign_id="C1")
            if i < 12:
                insert("ticket_orders", who, 2, event_type="ticket.order_placed", status="placed",
                       order_ref=f"o{i}", quantity=1)
        release = release_from_store(store, "fun", 10)
        assert "campaign_funnel" not in release.unavailable
        sizes = {c.key[2]: c.size for c in release.cells("campaign_funnel")}
        assert sizes == {"sent": 40, "delivered": 40, "opened": 30, "clicked": 20, "ordered": 12}
        published = {c.key[2] for c in release.cells("campaign_funnel") if release.protected.published(c.id)}
        # every step differs from the next by >= k except clicked -> ordered (20 - 12 < 10): one of
        # the two is suppressed, so the 8 clickers who did not order cannot be told apart
        assert {"sent", "delivered", "opened"} <= published
        assert len(published & {"clicked", "ordered"}) == 1
        header, body = rows(release, "campaign_funnel", "en")
        assert header[:3] == ["venue", "campaign", "sent"] and body[0][:5] == ["v1", "C1", "40", "40", "30"]
    finally:
        store.close()


def test_campaign_funnel_without_machine_open_shared(tmp_path: Path) -> None:
    """An agreement sharing campaign events without ``machine_open`` (an optional field): the
    release still builds (the funnel's view used to name the missing column and fail every
    insight of the partner) and every open counts, as nothing says it was a machine's."""
    agreement = Agreement.model_validate({
        "id": "dsa-fun", "provider_venues": ["v1"], "partner": "fun", "purposes": [PURPOSE],
        "event_types": ["ticket.order_placed", "campaign.email_clicked", "campaign.email_sent",
                        "campaign.email_delivered", "campaign.email_opened"],
        "allowed_fields": ["campaign_id", "quantity"], "retention_days": 3650,
        "valid_from": date(2020, 1, 1), "valid_until": date(2030, 1, 1)})
    store = ChdbStore(tmp_path / "fun")

    def insert(table: str, person: str, later: int = 0, **fields: Any) -> None:
        store.command(_row(table, person, later, **fields).replace("att.", "fun.").replace("dsa-att", "dsa-fun"))

    try:
        ensure_partner(store, partner_tables("fun", [agreement]))
        for i in range(30):
            insert("campaign_events", f"r{i:02d}", event_type="campaign.email_sent", campaign_id="C1")
            insert("campaign_events", f"r{i:02d}", event_type="campaign.email_delivered", campaign_id="C1")
            insert("campaign_events", f"r{i:02d}", event_type="campaign.email_opened", campaign_id="C1")
        release = release_from_store(store, "fun", 10)
        assert "campaign_funnel" not in release.unavailable
        sizes = {c.key[2]: c.size for c in release.cells("campaign_funnel")}
        assert sizes == {"sent": 30, "delivered": 30, "opened": 30}
    finally:
        store.close()
