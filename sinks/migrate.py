"""Create or evolve tables in a store from their :class:`~sinks.ddl.TableSpec` (idempotent).

:func:`ensure_table` creates the database and the table if missing, adds the columns the
table lacks (schema evolution and wider projections only add columns: existing rows keep their
data and read ``NULL``/the default in the new ones) and updates column ``DEFAULT`` expressions
that changed (metadata only). :func:`ensure_partner` does that for every table of a partner
(or of a venue's own store), (re)creates its views (``ticket_orders_current``, after the
columns they read), then applies shortened retentions to the existing rows of every
shared-event table (:func:`sinks.tables.shortened_retention_sql`).
Raises :class:`~core.errors.StoreUnavailable` like any store call.
"""

from __future__ import annotations

import logging
import re

from sinks.base import Store
from sinks.ddl import (
    TableSpec,
    add_missing_columns_sql,
    columns_sql,
    create_database_sql,
    create_table_sql,
    modify_default_sql,
)
from sinks.tables import PartnerTables, shortened_retention_sql

log = logging.getLogger(__name__)
_SPACE = re.compile(r"\s+")


def _normal(expression: str) -> str:
    return _SPACE.sub("", expression).replace('"', "'")


def ensure_table(store: Store, spec: TableSpec) -> list[str]:
    """Create/evolve ``spec``'s table; returns the ``ALTER`` statements it ran."""
    store.command(create_database_sql(spec.database))
    store.command(create_table_sql(spec))
    sql, params = columns_sql(spec.database, spec.name)
    existing = {str(name): str(default or "") for name, default in store.query(sql, params)}
    statements = add_missing_columns_sql(spec, existing)
    for column in spec.columns:
        default = column.default_sql
        if column.name in existing and default is not None and _normal(existing[column.name]) != _normal(default):
            statements.append(modify_default_sql(spec, column))
    for statement in statements:
        log.info("%s: %s", spec.qualified, statement[:200])
        store.command(statement)
    return statements


def ensure_partner(store: Store, tables: PartnerTables) -> None:
    """Every table of the partner, evolved, with retention shortenings applied; then ``USE`` it."""
    for spec in tables.all:
        ensure_table(store, spec)
    for view in tables.views:
        store.command(view)
    known = [a for a, _ in tables.retention.days]
    for spec in tables.shared:
        sql = f"SELECT DISTINCT agreement_id FROM {spec.qualified} WHERE agreement_id NOT IN {{k:Array(String)}}"  # noqa: S608
        for (unknown,) in store.query(sql, {"k": known}):
            log.warning("%s: rows under agreement %r, which is not configured: they keep the retention they got "
                        "(new ones get the shortest, %d days)", spec.qualified, unknown,
                        tables.retention.default_days)
        for count_sql, update_sql, params in shortened_retention_sql(spec, tables.retention):
            ((stale,),) = store.query(count_sql, params)
            if int(stale):
                log.info("%s: retention of %s shortened, updating %s rows", spec.qualified, params["a"], stale)
                store.command(update_sql, params)
    store.use(tables.database)
