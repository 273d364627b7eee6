"""Shared audience insights on a partner's store (or a venue's own, ``venue:<venue>``), the SIBIL
declaration, and a guided start.

- :mod:`insights.views` — SQL views on the partner's ClickHouse database (person-level
  building blocks, and aggregate views that apply the k threshold);
- :mod:`insights.cells` — the published cells of every insight, built from the person-level
  views (pure);
- :mod:`insights.protect` — small-cell protection of a whole release (pure);
- :mod:`insights.engine` — one release for one partner: views, cells, protection;
- :mod:`insights.render` / :mod:`insights.html` — text, JSON and the self-contained HTML report;
- :mod:`insights.sibil` / :mod:`insights.sibil_source` — the quarterly ticketing declaration
  from a venue's own store (or its raw topic);
- :mod:`insights.onboard` — ``techne init``;
- :mod:`insights.cli` — the ``techne insights`` / ``sibil`` / ``init`` commands.

On a partner's store, insights only read rows shared for :data:`PURPOSE`; on a venue's own
store, the venue's own rows (:func:`insights.views.purposes`). Nothing in this package writes to
a store's tables of events.
"""

PURPOSE = "cross_venue_analytics"
"""The only purpose whose rows insights read (purpose limitation)."""

DEFAULT_MIN_CELL_SIZE = 10
