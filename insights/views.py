"""SQL views of the insights on one partner's ClickHouse database (statements are pure; I/O in
:func:`ensure_views`).

Two layers, both plain views (no materialized copy: an erasure or a retention ``DELETE`` in
``ticket_orders`` is reflected at once, and nothing here outlives the rows it is built from):

* **person-level building blocks** (``insights_orders``, ``insights_visits``,
  ``insights_disciplines``, ``insights_lead``, ``insights_clicks``,
  ``insights_attendance``, ``insights_funnel``): one row per order / per person and season /
  per click / per ticket holder and performance / per campaign recipient. They are as personal
  as the table they read and are *not* for publication; :mod:`insights.engine` reads them to
  build and protect the published cells.
* **aggregate views** (``insights_overlap``, ``insights_loyalty``, ``insights_geography``,
  ``insights_crossover``, ``insights_lead_time``, ``insights_conversion``, ``insights_no_show``):
  counts of distinct
  persons per cell, each count replaced by ``NULL`` below the partner's k (threshold only). They
  are the analyst's entry point on the store; what is *published* (CLI, HTML report) comes from
  ``techne insights``, which adds complementary and differencing protection over the whole
  release (see :mod:`insights.protect`).

Orders are read from ``ticket_orders_current`` (one row per order in its latest state, see
:func:`sinks.tables.current_orders_sql`), and only those that still count: a cancelled or
refunded order no longer counts in any insight, and an order's payment, issued tickets or
exchange never count as more orders. Only rows shared for :data:`insights.PURPOSE` are read.
No view exposes the four columns ``subject_pseudonym, venue_id, occurred_at, purpose`` together
(the person is ``person``, the order time ``ordered_at``, the purpose is fixed); the sink's
erasure deletes from tables only, never from a view.

Seasons run from 1 September to 31 August (Europe/Paris) and are named by their first year
(2026 = season 2026-27), from the performance date, else the order date. Optional columns the
partner's agreements do not share (``performance_at``, ``departement``, …) read as ``NULL``;
:func:`missing_for` says which insights that makes unavailable.
"""

# ruff: noqa: S608  (SQL built from quoted identifiers, constants and ints only; no input text)
from __future__ import annotations

from collections.abc import Collection

from insights import PURPOSE
from sinks.base import Store
from sinks.ddl import quote
from sinks.reader import Reader
from sinks.tables import CURRENT_ORDERS, EMAIL_CLICKS, TICKET_ORDERS, current_orders_select

TZ = "Europe/Paris"
CONVERSION_DAYS = 7
"""An order within this many days after a click counts as a conversion (fixed: a choosable
window would let two releases be differenced into the orders of one day)."""
CAMPAIGN_EVENTS = "campaign_events"
"""The sink's table of campaign sends, deliveries, opens, bounces and unsubscribes."""
FUNNEL_STEPS = ("sent", "delivered", "opened", "clicked", "ordered")
"""The campaign funnel: each step counts the persons who reached it *and* every earlier one (an
open by a machine, the mail client's privacy protection, is no open)."""
SCANS = "ticket_scans"
"""The sink's table of entrance scans (:mod:`schemas.kinds`, kind ``attendance``)."""
CLICKS = EMAIL_CLICKS
"""The sink's e-mail click table (:func:`sinks.tables.partner_tables`, ``clicks``): the one shape
both the sink writes and these views read."""
FREQUENCY_BUCKETS: tuple[tuple[str, int, int | None], ...] = (("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6+", 6, None))
UNKNOWN = "?"
"""Département / discipline / tariff label of persons whose value was not shared."""

OPTIONAL: dict[str, str] = {
    "performance_at": "Nullable(DateTime64(6, 'UTC'))",
    "performance_id": "Nullable(String)",
    "production": "Nullable(String)",
    "discipline": "Nullable(String)",
    "tariff": "Nullable(String)",
    "departement": "Nullable(String)",
}
NEEDS: dict[str, tuple[str, ...]] = {
    "overlap": (),
    "loyalty": (),
    "geography": ("departement",),
    "crossover": ("discipline",),
    "lead_time": ("discipline", "tariff", "performance_at"),
    "conversion": (CLICKS,),
    "attendance": ("performance_id", SCANS),
    "campaign_funnel": (CAMPAIGN_EVENTS, CLICKS),
}
"""Columns (or the clicks table) each insight needs beyond the always-present ones."""


def missing_for(insight: str, available: Collection[str]) -> list[str]:
    """What ``insight`` needs that the partner's store lacks (columns, or the clicks table)."""
    return [c for c in NEEDS[insight] if c not in available]


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _col(name: str, available: Collection[str]) -> str:
    return quote(name) if name in available else f"CAST(NULL AS {OPTIONAL[name]})"


def _season(ts: str) -> str:
    return f"toInt32(toYear({ts}, '{TZ}')) - if(toMonth({ts}, '{TZ}') < 9, 1, 0)"


def _k(expr: str, k: int) -> str:
    return f"if({expr} >= {k}, {expr}, NULL)"


def person_views(database: str, available: Collection[str], qualified: bool = True) -> list[tuple[str, str]]:
    """``(name, SELECT)`` of the person-level views, in dependency order. ``qualified=False``:
    a view reads the others by their bare name (as common table expressions, see :func:`ctes`)."""
    db = quote(database)
    ref = f"{db}." if qualified else ""
    c = {name: _col(name, available) for name in OPTIONAL}
    attended = f"coalesce({c['performance_at']}, placed_at)"
    performance = (f"coalesce({c['performance_id']}, concat(ifNull({c['production']}, ''), '@', "
                   f"toString(toDate({attended}, '{TZ}'))))")
    views = [
        (CURRENT_ORDERS, current_orders_select(database, available)),  # as the sink makes it
        ("insights_orders", f"""
SELECT order_key AS event_id, venue_id, subject_pseudonym AS person, placed_at AS ordered_at,
       {c['performance_at']} AS performance_at, {_season(attended)} AS season, {performance} AS performance,
       {c['discipline']} AS discipline, {c['tariff']} AS tariff, {c['departement']} AS departement
FROM {ref}{quote(CURRENT_ORDERS)}
WHERE purpose = {_literal(PURPOSE)} AND counts"""),
        ("insights_visits", f"""
SELECT season, venue_id, person, uniqExact(performance) AS performances,
       argMax(dept, ordered_at) AS departement, maxIf(ordered_at, dept IS NOT NULL) AS dept_at
FROM (SELECT season, venue_id, person, performance, ordered_at, departement AS dept FROM {ref}insights_orders)
GROUP BY season, venue_id, person"""),
        ("insights_disciplines", f"""
SELECT DISTINCT season, discipline, person FROM {ref}insights_orders WHERE discipline IS NOT NULL"""),
        ("insights_lead", f"""
SELECT discipline, tariff, person,
       dateDiff('day', toDate(ordered_at, '{TZ}'), toDate(performance_at, '{TZ}')) AS lead_days
FROM {ref}insights_orders
WHERE discipline IS NOT NULL AND tariff IS NOT NULL AND performance_at IS NOT NULL AND performance_at >= ordered_at"""),
    ]
    if CLICKS in available:
        views.append(("insights_clicks", f"""
SELECT c.venue_id AS venue_id, c.campaign_id AS campaign_id, c.person AS person,
       max(o.ordered_at > c.clicked_at AND o.ordered_at <= c.clicked_at + INTERVAL {CONVERSION_DAYS} DAY) AS converted
FROM (SELECT venue_id, assumeNotNull(campaign_id) AS campaign_id, subject_pseudonym AS person, occurred_at AS clicked_at
      FROM {db}.{quote(CLICKS)} FINAL WHERE purpose = {_literal(PURPOSE)} AND campaign_id IS NOT NULL) AS c
LEFT JOIN {ref}insights_orders AS o ON o.venue_id = c.venue_id AND o.person = c.person
GROUP BY c.venue_id, c.campaign_id, c.person"""))
    if CAMPAIGN_EVENTS in available and CLICKS in available:
        views.append(("insights_funnel", f"""
SELECT e.venue_id AS venue_id, e.campaign_id AS campaign_id, e.person AS person,
       max(e.event_type = 'campaign.email_sent') AS sent, max(e.event_type = 'campaign.email_delivered') AS delivered,
       max(e.event_type = 'campaign.email_opened' AND NOT ifNull(e.machine_open, false)) AS opened,
       max(e.clicked) AS clicked, max(e.ordered) AS ordered
FROM (SELECT venue_id, assumeNotNull(campaign_id) AS campaign_id, subject_pseudonym AS person, event_type,
             machine_open, false AS clicked, false AS ordered
      FROM {db}.{quote(CAMPAIGN_EVENTS)} FINAL WHERE purpose = {_literal(PURPOSE)} AND campaign_id IS NOT NULL
      UNION ALL
      SELECT venue_id, campaign_id, person, 'campaign.email_clicked', CAST(NULL AS Nullable(Bool)), true,
             converted = 1
      FROM {ref}insights_clicks) AS e
GROUP BY e.venue_id, e.campaign_id, e.person"""))
    if SCANS in available and "performance_id" in available:
        views.append(("insights_attendance", f"""
SELECT o.venue_id AS venue_id, o.performance_id AS performance_id, o.person AS person,
       max(s.person != '') AS attended
FROM (SELECT DISTINCT venue_id, assumeNotNull(performance_id) AS performance_id, subject_pseudonym AS person
      FROM {ref}{quote(CURRENT_ORDERS)}
      WHERE purpose = {_literal(PURPOSE)} AND counts AND performance_id IS NOT NULL) AS o
LEFT JOIN (SELECT DISTINCT venue_id, assumeNotNull(performance_id) AS performance_id, subject_pseudonym AS person
           FROM {db}.{quote(SCANS)} FINAL
           WHERE purpose = {_literal(PURPOSE)} AND result = 'admitted' AND performance_id IS NOT NULL) AS s
  ON s.venue_id = o.venue_id AND s.performance_id = o.performance_id AND s.person = o.person
GROUP BY o.venue_id, o.performance_id, o.person"""))
    return views


def aggregate_views(database: str, available: Collection[str], k: int) -> list[tuple[str, str]]:
    """``(name, SELECT)`` of the aggregate views; every person count below ``k`` reads ``NULL``."""
    db = quote(database)
    freq_names = [f"freq_{label.replace('-', '_').replace('+', 'p')}" for label, _, _ in FREQUENCY_BUCKETS]
    buckets = ", ".join(
        f"countIf(v.performances >= {lo}{f' AND v.performances <= {hi}' if hi else ''}) AS {name}"
        for (_, lo, hi), name in zip(FREQUENCY_BUCKETS, freq_names, strict=True)
    )
    everyone = f"""(SELECT season, venue_id, person, performances FROM {db}.insights_visits
      UNION ALL SELECT season, '*', person, toUInt64(sum(performances))
      FROM {db}.insights_visits GROUP BY season, person)"""
    views = [
        ("insights_overlap", f"""
SELECT season, venue_a, venue_b, {_k('persons', k)} AS persons FROM (
  SELECT a.season AS season, a.venue_id AS venue_a, b.venue_id AS venue_b, uniqExact(a.person) AS persons
  FROM {db}.insights_visits AS a INNER JOIN {db}.insights_visits AS b ON a.season = b.season AND a.person = b.person
  WHERE a.venue_id <= b.venue_id GROUP BY season, venue_a, venue_b)"""),
        ("insights_loyalty", f"""
SELECT a.season AS season, a.venue_id AS venue_id, {_k('a.spectators', k)} AS spectators,
       if(a.season > o.first, {_k('a.first_time', k)}, NULL) AS first_time,
       if(a.season > o.first, {_k('a.returning', k)}, NULL) AS returning,
       {', '.join(f"{_k('a.' + n, k)} AS {n}" for n in freq_names)},
       if(l.previous = 0, NULL, {_k('l.lapsed', k)}) AS lapsed
FROM (
  SELECT v.season AS season, v.venue_id AS venue_id, count() AS spectators,
         countIf(f.first_season = v.season) AS first_time, countIf(f.first_season < v.season) AS returning, {buckets}
  FROM {everyone} AS v
  INNER JOIN (SELECT venue_id, person, min(season) AS first_season FROM {everyone} GROUP BY venue_id, person) AS f
    ON f.venue_id = v.venue_id AND f.person = v.person
  GROUP BY season, venue_id) AS a
CROSS JOIN (SELECT min(season) AS first FROM {db}.insights_visits) AS o
LEFT JOIN (
  SELECT p.season + 1 AS season, p.venue_id AS venue_id, count() AS previous, countIf(n.person = '') AS lapsed
  FROM {everyone} AS p
  LEFT JOIN {everyone} AS n ON n.venue_id = p.venue_id AND n.person = p.person AND n.season = p.season + 1
  GROUP BY season, venue_id) AS l ON l.season = a.season AND l.venue_id = a.venue_id"""),
        ("insights_crossover", f"""
SELECT season, discipline_a, discipline_b, {_k('persons', k)} AS persons FROM (
  SELECT a.season AS season, a.discipline AS discipline_a, b.discipline AS discipline_b, uniqExact(a.person) AS persons
  FROM {db}.insights_disciplines AS a
  INNER JOIN {db}.insights_disciplines AS b ON a.season = b.season AND a.person = b.person
  WHERE a.discipline <= b.discipline GROUP BY season, discipline_a, discipline_b)"""),
        ("insights_geography", f"""
SELECT season, venue_id, ifNull(departement, '{UNKNOWN}') AS departement, {_k('uniqExact(person)', k)} AS persons
FROM (SELECT season, venue_id, person, departement FROM {db}.insights_visits
      UNION ALL
      SELECT season, '*', person, argMax(departement, (dept_at, ifNull(departement, '')))
      FROM {db}.insights_visits GROUP BY season, person)
GROUP BY season, venue_id, departement"""),
        ("insights_lead_time", f"""
SELECT discipline, tariff, {_k('count()', k)} AS persons,
       if(count() >= {k}, quantileExactLow(0.5)(person_days), NULL) AS median_days
FROM (SELECT discipline, tariff, person, quantileExactLow(0.5)(lead_days) AS person_days
      FROM {db}.insights_lead GROUP BY discipline, tariff, person
      UNION ALL
      SELECT discipline, '*', person, quantileExactLow(0.5)(lead_days)
      FROM {db}.insights_lead GROUP BY discipline, person)
GROUP BY discipline, tariff"""),
    ]
    if CLICKS in available:
        views.append(("insights_conversion", f"""
SELECT venue_id, campaign_id, {_k('count()', k)} AS clicked, {_k('countIf(converted)', k)} AS converted
FROM {db}.insights_clicks GROUP BY venue_id, campaign_id"""))
    if SCANS in available and "performance_id" in available:
        views.append(("insights_no_show", f"""
SELECT venue_id, performance_id, {_k('count()', k)} AS holders, {_k('countIf(attended)', k)} AS admitted,
       {_k('countIf(NOT attended)', k)} AS no_show
FROM {db}.insights_attendance GROUP BY venue_id, performance_id"""))
    return views


def ctes(database: str, available: Collection[str]) -> str:
    """The person-level views as one ``WITH`` clause: what a read-only reader (no ``CREATE
    VIEW``) puts before ``SELECT ... FROM insights_visits`` (the same SQL as the views)."""
    return "WITH " + ", ".join(f"{name} AS ({select.strip()})"
                               for name, select in person_views(database, available, qualified=False))


def view_statements(database: str, available: Collection[str], k: int) -> list[tuple[str, str]]:
    """Every ``(name, CREATE OR REPLACE VIEW ...)`` for the partner's database."""
    db = quote(database)
    return [(name, f"CREATE OR REPLACE VIEW {db}.{quote(name)} AS {select.strip()}")
            for name, select in [*person_views(database, available), *aggregate_views(database, available, k)]]


def available_columns(store: Store | Reader, database: str) -> set[str]:
    """Columns of ``ticket_orders`` in ``database``, plus :data:`CLICKS` if that table exists with
    a ``campaign_id`` column (the partner's agreements share e-mail clicks with their campaign),
    plus :data:`SCANS` if ``ticket_scans`` exists with ``performance_id`` and ``result``, plus
    :data:`CAMPAIGN_EVENTS` if ``campaign_events`` exists with ``campaign_id``."""
    rows = store.query("SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}",
                       {"d": database, "t": TICKET_ORDERS})
    found = {str(name) for (name,) in rows}
    ((clicks,),) = store.query("SELECT count() FROM system.columns WHERE database = {d:String} AND table = {t:String} "
                               "AND name = 'campaign_id'", {"d": database, "t": CLICKS})
    if int(clicks):
        found.add(CLICKS)
    ((events,),) = store.query("SELECT count() FROM system.columns WHERE database = {d:String} "
                               "AND table = {t:String} AND name = 'campaign_id'", {"d": database, "t": CAMPAIGN_EVENTS})
    if int(events):
        found.add(CAMPAIGN_EVENTS)
    ((scans,),) = store.query("SELECT count() FROM system.columns WHERE database = {d:String} AND table = {t:String} "
                              "AND name IN ('performance_id', 'result')", {"d": database, "t": SCANS})
    if int(scans) == 2:
        found.add(SCANS)
    return found


def ensure_views(store: Store, database: str, k: int) -> set[str]:
    """(Re)create every view (idempotent); returns the available columns they were built on."""
    available = available_columns(store, database)
    for _, statement in view_statements(database, available, k):
        store.command(statement)
    return available
