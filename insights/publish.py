"""The latest protected release as a table, for dashboards (``techne insights publish``).

``<partner db>.insights_release`` holds the published cells of the last release only (each
publish replaces the previous one: keeping every release would hand out consecutive snapshots to
difference), one row per cell: ``insight``, ``season`` (``NULL`` for lead times and conversion),
two key columns, ``measure`` and ``value`` (distinct persons), plus the lead-time quantiles.
Cells with three keys and no measure (``acquisition``: venue, month, channel;
``web_before_purchase``: venue, kind, item) put the third key in ``measure``; rows with
``insight = 'ad_spend'`` carry the month's spend per venue (``key_a``), month (``key_b``) and
channel (``measure``) in minor units (no person: not protected). Suppressed cells are absent;
rows with ``insight = 'protection'`` give, per insight
(``key_a``) and reason (``measure``), how many cells were suppressed. It holds no pseudonym,
so erasure has nothing to do there, and Grafana panels read this table only, never the
person-level views.
"""

from __future__ import annotations

from typing import Any

from insights.cells import INSIGHTS, Cell
from insights.engine import Release, store_database
from insights.protect import REASONS
from sinks.base import Store
from sinks.ddl import Column, TableSpec, to_json_each_row
from sinks.migrate import ensure_table

TABLE = "insights_release"


def spec(database: str) -> TableSpec:
    columns = (
        Column("released_at", "DateTime64(3, 'UTC')"), Column("partner", "LowCardinality(String)"),
        Column("k", "UInt16"), Column("insight", "LowCardinality(String)"), Column("season", "Nullable(Int32)"),
        Column("key_a", "String"), Column("key_b", "String"), Column("measure", "LowCardinality(String)"),
        Column("value", "UInt64"), Column("p25_days", "Nullable(Int32)"), Column("median_days", "Nullable(Int32)"),
        Column("p75_days", "Nullable(Int32)"),
    )
    return TableSpec(database, TABLE, columns, ("insight", "key_a", "key_b", "measure"), engine="MergeTree",
                     settings=())


def _row(cell: Cell) -> dict[str, Any]:
    key = cell.keys()
    season = key.pop("season", None)
    measure = key.pop("measure", None)
    values = [*map(str, key.values())]
    if measure is None:  # a third key in place of a measure (acquisition, web_before_purchase)
        measure = values.pop(2) if len(values) == 3 else "persons"
    a, b = [*values, "", ""][:2]
    measures = dict(cell.measures)
    return {"insight": cell.insight, "season": season, "key_a": a, "key_b": b, "measure": str(measure),
            "value": cell.size, **{m: measures.get(m) for m in ("p25_days", "median_days", "p75_days")}}


def rows(release: Release) -> list[dict[str, Any]]:
    """Published cells and protection counts, as rows of :data:`TABLE`."""
    common = {"released_at": release.generated_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "partner": release.partner,
              "k": release.k}
    out = [{**common, **_row(c)} for cid, c in sorted(release.protected.cells.items(), key=lambda i: str(i[0]))
           if release.protected.published(cid)]
    out += [{**common, "insight": "ad_spend", "season": None, "key_a": v, "key_b": m, "measure": c, "value": n,
             "p25_days": None, "median_days": None, "p75_days": None}
            for (v, m, c), n in sorted(release.spend.items())]
    for insight in INSIGHTS:
        counts = release.protected.counts(insight)
        out += [{**common, "insight": "protection", "season": None, "key_a": insight, "key_b": "", "measure": m,
                 "value": counts[m], "p25_days": None, "median_days": None, "p75_days": None}
                for m in ("cells", "published", "suppressed", *REASONS)]
    return out


def publish(store: Store, release: Release) -> int:
    """Replace the partner's published release by ``release``; returns the rows written."""
    table = spec(store_database(release.partner))
    ensure_table(store, table)
    data = rows(release)
    store.command(f"TRUNCATE TABLE {table.qualified}")
    store.insert(table.qualified, list(table.names), to_json_each_row(data), "JSONEachRow",
                 f"insights-{release.generated_at.timestamp()}")
    return len(data)
