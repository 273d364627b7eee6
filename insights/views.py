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
from schemas.kinds import MEASUREMENT_PURPOSE, OWN_PURPOSE
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
PAGE_VIEWS = "page_views"
"""The sink's table of page views (of consented people: the others are exempt measurement)."""
CONTENTS = "content_interactions"
"""The sink's table of content interactions (videos, podcasts, documents) of consented people."""
AD_SPEND = "ad_spend"
"""The sink's table of daily ad spend (describes no person)."""
BEFORE_DAYS = 30
"""Web and content before purchase, and the first-touch window: what a person saw at the venue in
the 30 days up to (and including the moment of) their first order there (fixed, like
:data:`CONVERSION_DAYS`)."""
ATTRIBUTION = "first_touch"
"""The one attribution rule: a first-time buyer is attributed to the channel of their *earliest*
consented page view at the venue within :data:`BEFORE_DAYS` days before their first order there
(``direct`` if that view carries neither a UTM source nor a referrer), :data:`UNTRACKED` without
any. Fixed: a second rule would be a second partition of the same buyers, computed and protected
in the same release or not at all."""
UNTRACKED = "untracked"
DIRECT = "direct"
CHANNEL_ALIASES: dict[str, str] = {
    "facebook": "meta", "fb": "meta", "instagram": "meta", "ig": "meta", "meta_ads": "meta",
    "google": "google_ads", "adwords": "google_ads", "gads": "google_ads", "googleads": "google_ads",
    "tiktok_ads": "tiktok", "linkedin_ads": "linkedin", "bing": "microsoft_ads", "microsoft": "microsoft_ads",
}
"""Lower-cased UTM source / ad platform -> channel: a page view's ``utm_source`` and an ad spend's
``platform`` meet on the same channel name (``meta``, ``google_ads``, ...); any other value is its
own channel, lower-cased."""
SEARCH_HOSTS = ("google", "bing", "qwant", "duckduckgo", "ecosia", "yahoo", "search.brave")
SOCIAL_HOSTS = ("facebook", "instagram", "t.co", "twitter", "x.com", "linkedin", "youtube", "tiktok", "pinterest")
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
    "acquisition": (PAGE_VIEWS, AD_SPEND),
    "web_before_purchase": (),
}
"""Columns (or the clicks table) each insight needs beyond the always-present ones."""
NEEDS_ONE_OF: dict[str, tuple[str, ...]] = {"web_before_purchase": (PAGE_VIEWS, CONTENTS)}
"""Tables of which an insight needs at least one (pages seen, contents seen, or both)."""


def missing_for(insight: str, available: Collection[str]) -> list[str]:
    """What ``insight`` needs that the partner's store lacks (columns, or the clicks table)."""
    missing = [c for c in NEEDS[insight] if c not in available]
    either = NEEDS_ONE_OF.get(insight, ())
    if either and not any(t in available for t in either):
        missing.append(" | ".join(either))
    return missing


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _col(name: str, available: Collection[str]) -> str:
    return quote(name) if name in available else f"CAST(NULL AS {OPTIONAL[name]})"


def _season(ts: str) -> str:
    return f"toInt32(toYear({ts}, '{TZ}')) - if(toMonth({ts}, '{TZ}') < 9, 1, 0)"


def _k(expr: str, k: int) -> str:
    return f"if({expr} >= {k}, {expr}, NULL)"


def person_views(database: str, available: Collection[str], qualified: bool = True,
                 own: bool = False) -> list[tuple[str, str]]:
    """``(name, SELECT)`` of the person-level views, in dependency order. ``qualified=False``:
    a view reads the others by their bare name (as common table expressions, see :func:`ctes`).
    ``own``: the venue's own store (rows of :data:`~schemas.kinds.OWN_PURPOSE`; page views and
    content interactions kept under any consent), see :func:`purposes`."""
    db = quote(database)
    ref = f"{db}." if qualified else ""
    purpose, touch_purpose = purposes(own)
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
WHERE purpose = {_literal(purpose)} AND counts"""),
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
      FROM {db}.{quote(CLICKS)} FINAL WHERE purpose = {_literal(purpose)} AND campaign_id IS NOT NULL) AS c
LEFT JOIN {ref}insights_orders AS o ON o.venue_id = c.venue_id AND o.person = c.person
GROUP BY c.venue_id, c.campaign_id, c.person"""))
    if CAMPAIGN_EVENTS in available and CLICKS in available:
        machine = ("machine_open" if f"{CAMPAIGN_EVENTS}.machine_open" in available
                   else "CAST(NULL AS Nullable(Bool)) AS machine_open")
        views.append(("insights_funnel", f"""
SELECT e.venue_id AS venue_id, e.campaign_id AS campaign_id, e.person AS person,
       max(e.event_type = 'campaign.email_sent') AS sent, max(e.event_type = 'campaign.email_delivered') AS delivered,
       max(e.event_type = 'campaign.email_opened' AND NOT ifNull(e.machine_open, false)) AS opened,
       max(e.clicked) AS clicked, max(e.ordered) AS ordered
FROM (SELECT venue_id, assumeNotNull(campaign_id) AS campaign_id, subject_pseudonym AS person, event_type,
             {machine}, false AS clicked, false AS ordered
      FROM {db}.{quote(CAMPAIGN_EVENTS)} FINAL WHERE purpose = {_literal(purpose)} AND campaign_id IS NOT NULL
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
      WHERE purpose = {_literal(purpose)} AND counts AND performance_id IS NOT NULL) AS o
LEFT JOIN (SELECT DISTINCT venue_id, assumeNotNull(performance_id) AS performance_id, subject_pseudonym AS person
           FROM {db}.{quote(SCANS)} FINAL
           WHERE purpose = {_literal(purpose)} AND result = 'admitted' AND performance_id IS NOT NULL) AS s
  ON s.venue_id = o.venue_id AND s.performance_id = o.performance_id AND s.person = o.person
GROUP BY o.venue_id, o.performance_id, o.person"""))
    touches = _touches(db, available, touch_purpose)
    if touches:
        views.append(("insights_first_orders", f"""
SELECT venue_id, person, min(ordered_at) AS first_at FROM {ref}insights_orders GROUP BY venue_id, person"""))
    if PAGE_VIEWS in available and AD_SPEND in available:
        channel = channel_sql(*(quote(c) if f"{PAGE_VIEWS}.{c}" in available else "CAST(NULL AS Nullable(String))"
                                for c in ("utm_source", "referrer_host")))
        platform = channel_sql("platform", "CAST(NULL AS Nullable(String))")
        euros = "ifNull(currency, 'EUR') = 'EUR'" if f"{AD_SPEND}.currency" in available else "1"
        views.append(("insights_spend", f"""
SELECT venue_id, month, channel, toInt64(sum(s_spend)) AS spend_minor
FROM (SELECT venue_id, formatDateTime(toDate(day), '%Y-%m') AS month, {platform} AS channel, spend_minor AS s_spend
      FROM {db}.{quote(AD_SPEND)} FINAL
      WHERE purpose = {_literal(purpose)} AND day IS NOT NULL AND spend_minor IS NOT NULL AND {euros})
GROUP BY venue_id, month, channel"""))
        views.append(("insights_acquisition", f"""
SELECT f.venue_id AS venue_id, formatDateTime(f.first_at, '%Y-%m', '{TZ}') AS month, f.person AS person,
       if(countIf({_in_window('t.viewed_at')} AND t.person != '') = 0, '{UNTRACKED}',
          argMinIf(t.channel, t.viewed_at, {_in_window('t.viewed_at')} AND t.person != '')) AS channel
FROM {ref}insights_first_orders AS f
LEFT JOIN (SELECT venue_id, subject_pseudonym AS person, occurred_at AS viewed_at, {channel} AS channel
           FROM {db}.{quote(PAGE_VIEWS)} FINAL WHERE {touch_purpose}) AS t
  ON t.venue_id = f.venue_id AND t.person = f.person
GROUP BY f.venue_id, f.first_at, f.person"""))
    if touches:
        views.append(("insights_browsing", f"""
SELECT DISTINCT f.venue_id AS venue_id, f.person AS person, t.kind AS kind, t.item AS item
FROM {ref}insights_first_orders AS f
INNER JOIN ({' UNION ALL '.join(touches)}) AS t ON t.venue_id = f.venue_id AND t.person = f.person
WHERE {_in_window('t.seen_at')}"""))
    return views


def purposes(own: bool) -> tuple[str, str]:
    """``(purpose of the rows read, condition on web and content rows)``: on a partner's store,
    rows shared for :data:`insights.PURPOSE` only; on the venue's own store, its own rows
    (:data:`~schemas.kinds.OWN_PURPOSE`), and page views / content interactions kept there under
    a consent, whatever its purpose (those of people without one are exempt measurement, in
    another table under a visitor key that never equals a buyer's pseudonym, so never read)."""
    if own:
        return OWN_PURPOSE, f"purpose != {_literal(MEASUREMENT_PURPOSE)}"
    return PURPOSE, f"purpose = {_literal(PURPOSE)}"


def _in_window(column: str) -> str:
    return f"{column} <= f.first_at AND {column} >= f.first_at - INTERVAL {BEFORE_DAYS} DAY"


def _touches(db: str, available: Collection[str], where: str) -> list[str]:
    """SELECTs of ``(venue_id, person, seen_at, kind, item)``: page paths and contents seen."""
    out = []
    if PAGE_VIEWS in available:
        out.append(f"SELECT venue_id, subject_pseudonym AS person, occurred_at AS seen_at, 'page' AS kind, "
                   f"assumeNotNull(page_path) AS item FROM {db}.{quote(PAGE_VIEWS)} FINAL "
                   f"WHERE {where} AND page_path IS NOT NULL")
    if CONTENTS in available:
        out.append(f"SELECT venue_id, subject_pseudonym AS person, occurred_at AS seen_at, 'content' AS kind, "
                   f"assumeNotNull(content_id) AS item FROM {db}.{quote(CONTENTS)} FINAL "
                   f"WHERE {where} AND content_id IS NOT NULL")
    return out


def channel_of(source: str | None, referrer: str | None = None) -> str:
    """The acquisition channel of a touch (Python twin of :func:`channel_sql`, for docs and tests):
    the UTM source, lower-cased, through :data:`CHANNEL_ALIASES`; else ``search`` / ``social`` for a
    referrer among :data:`SEARCH_HOSTS` / :data:`SOCIAL_HOSTS`, ``referral`` for another referrer;
    ``direct`` without either."""
    src = (source or "").strip().lower()
    if src:
        return CHANNEL_ALIASES.get(src, src)
    host = (referrer or "").strip().lower()
    if not host:
        return DIRECT
    bare = host.removeprefix("www.").removeprefix("m.").removeprefix("l.")
    if any(bare == h or bare.startswith(h + ".") for h in SEARCH_HOSTS):
        return "search"
    if any(bare == h or bare.startswith(h + ".") for h in SOCIAL_HOSTS):
        return "social"
    return "referral"


def channel_sql(source: str = "utm_source", referrer: str = "referrer_host") -> str:
    """:func:`channel_of` in SQL (over the page view's columns)."""
    aliases_from = ", ".join(_literal(a) for a in CHANNEL_ALIASES)
    aliases_to = ", ".join(_literal(c) for c in CHANNEL_ALIASES.values())
    src = f"lower(trimBoth(ifNull({source}, '')))"
    bare = f"replaceRegexpOne(lower(trimBoth(ifNull({referrer}, ''))), '^(www|m|l)[.]', '')"

    def among(names: tuple[str, ...]) -> str:
        return " OR ".join(f"{bare} = {_literal(h)} OR startsWith({bare}, {_literal(h + '.')})" for h in names)

    return (f"multiIf({src} != '', transform({src}, [{aliases_from}], [{aliases_to}], {src}), "
            f"{bare} = '', '{DIRECT}', {among(SEARCH_HOSTS)}, 'search', {among(SOCIAL_HOSTS)}, 'social', 'referral')")



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
    if PAGE_VIEWS in available and AD_SPEND in available:
        views.append(("insights_cost_per_new", f"""
SELECT venue_id, month, channel, {_k('buyers', k)} AS new_buyers, if(has_spend = 1, spend, NULL) AS spend_minor,
       if(buyers >= {k} AND has_spend = 1, intDiv(spend, buyers), NULL) AS cost_minor
FROM (SELECT venue_id, month, channel, sum(b) AS buyers, sum(sp) AS spend, max(hs) AS has_spend
      FROM (SELECT venue_id, month, channel, count() AS b, toInt64(0) AS sp, toUInt8(0) AS hs
            FROM {db}.insights_acquisition GROUP BY venue_id, month, channel
            UNION ALL
            SELECT venue_id, month, channel, toUInt64(0), spend_minor, toUInt8(1) FROM {db}.insights_spend)
      GROUP BY venue_id, month, channel)"""))
    if PAGE_VIEWS in available or CONTENTS in available:
        views.append(("insights_before_purchase", f"""
SELECT venue_id, kind, item, {_k('uniqExact(person)', k)} AS persons
FROM {db}.insights_browsing GROUP BY venue_id, kind, item"""))
    return views


def ctes(database: str, available: Collection[str], own: bool = False) -> str:
    """The person-level views as one ``WITH`` clause: what a read-only reader (no ``CREATE
    VIEW``) puts before ``SELECT ... FROM insights_visits`` (the same SQL as the views)."""
    return "WITH " + ", ".join(f"{name} AS ({select.strip()})"
                               for name, select in person_views(database, available, qualified=False, own=own))


def view_statements(database: str, available: Collection[str], k: int, own: bool = False) -> list[tuple[str, str]]:
    """Every ``(name, CREATE OR REPLACE VIEW ...)`` for the partner's database."""
    db = quote(database)
    return [(name, f"CREATE OR REPLACE VIEW {db}.{quote(name)} AS {select.strip()}")
            for name, select in [*person_views(database, available, own=own), *aggregate_views(database, available, k)]]


def available_columns(store: Store | Reader, database: str) -> set[str]:
    """Columns of ``ticket_orders`` in ``database``, plus :data:`CLICKS` if that table exists with
    a ``campaign_id`` column (the partner's agreements share e-mail clicks with their campaign),
    plus :data:`SCANS` if ``ticket_scans`` exists with ``performance_id`` and ``result``, plus
    :data:`CAMPAIGN_EVENTS` if ``campaign_events`` exists with ``campaign_id``, plus
    :data:`PAGE_VIEWS` (with ``page_path``), :data:`CONTENTS` (with ``content_id``) and
    :data:`AD_SPEND` (with ``day``, ``platform``, ``spend_minor``) and, as ``<table>.<column>``,
    their optional columns (``page_views.utm_source``, ``page_views.referrer_host``,
    ``ad_spend.currency``, and ``campaign_events.machine_open``: without it every open counts)."""
    rows = store.query("SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}",
                       {"d": database, "t": TICKET_ORDERS})
    found = {str(name) for (name,) in rows}
    ((clicks,),) = store.query("SELECT count() FROM system.columns WHERE database = {d:String} AND table = {t:String} "
                               "AND name = 'campaign_id'", {"d": database, "t": CLICKS})
    if int(clicks):
        found.add(CLICKS)
    events = {str(n) for (n,) in store.query(
        "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String} "
        "AND name IN ('campaign_id', 'machine_open')", {"d": database, "t": CAMPAIGN_EVENTS})}
    if "campaign_id" in events:
        found.add(CAMPAIGN_EVENTS)
        if "machine_open" in events:
            found.add(f"{CAMPAIGN_EVENTS}.machine_open")
    ((scans,),) = store.query("SELECT count() FROM system.columns WHERE database = {d:String} AND table = {t:String} "
                              "AND name IN ('performance_id', 'result')", {"d": database, "t": SCANS})
    if int(scans) == 2:
        found.add(SCANS)
    for table, needed, optional in ((PAGE_VIEWS, ("page_path",), ("utm_source", "referrer_host")),
                                    (CONTENTS, ("content_id",), ()),
                                    (AD_SPEND, ("day", "platform", "spend_minor"), ("currency",))):
        names = {str(n) for (n,) in store.query(
            "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}",
            {"d": database, "t": table})}
        if set(needed) <= names:
            found.add(table)
            found.update(f"{table}.{c}" for c in optional if c in names)
    return found


def ensure_views(store: Store, database: str, k: int, own: bool = False) -> set[str]:
    """(Re)create every view (idempotent); returns the available columns they were built on."""
    available = available_columns(store, database)
    for _, statement in view_statements(database, available, k, own):
        store.command(statement)
    return available
