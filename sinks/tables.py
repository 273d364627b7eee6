"""A partner's tables, derived from the shared Avro schemas and the partner's agreements (pure).

``ticket_orders`` (one row per shared ``SharedTicketOrder``):

* **Columns**: the fields every shared record carries (ids, times, venue, agreement, purpose,
  pseudonym) plus the union of the ``allowed_fields`` of the partner's agreements that share
  orders, in schema order, plus ``retain_until``. A field no agreement of the partner allows has no column at all.
  Columns come from every registered version of the schema (a version only adds fields).
* **Sort key** ``(purpose, venue_id, occurred_at, event_id)``: purpose limitation means every
  partner query should name the purpose it works for (a marketing query must not read rows
  shared for research), then partners slice by venue and by period (season, month) and group
  by production/performance. ``event_id`` ends the key: it is the row identity that
  ``ReplacingMergeTree`` collapses on. Per-person access (erasure) goes through a bloom-filter
  index on ``subject_pseudonym``; the pre-insert duplicate check through one on ``event_id``
  (restricted to the batch's ``occurred_at`` range, which the sort key prunes).
* **Partitions**: ``toYYYYMM(occurred_at)``, monthly.
* **Retention**: ``TTL retain_until DELETE`` with a per-row ``retain_until Date`` whose
  ``DEFAULT`` is ``toDate(occurred_at) + <retention_days of the row's agreement_id>``. Why a
  stored per-row date rather than a TTL expression over ``agreement_id``: a partner holds
  several agreements (different venues, purposes, retentions) whose rows share the table; the
  deadline is fixed when the row arrives, under the terms in force then, and does not depend
  on the sink's configuration at merge time (an agreement file removed after it ended must not
  make its rows immortal, nor delete them early); partners can see it (``retain_until`` is a
  column). When an agreement's retention is *shortened*, :func:`shortened_retention_sql`
  brings existing rows forward (a mutation, run by ``ensure_schema``); a lengthened retention
  applies to new rows only: data collected under the shorter promise keeps it. A row under an
  agreement the sink does not know gets the partner's shortest retention.

``email_clicks`` (one row per shared ``SharedEmailClick``), only for a partner with an
agreement covering ``campaign.email_clicked``: built by the same rules from that schema (the
always-present fields, the fields the agreements covering clicks allow, ``retain_until``), same sort
key, partitions, retention and indexes. Its ``subject_pseudonym`` is in the same domain as the
orders' (same agreement), so ``email_clicks`` joins ``ticket_orders`` on it.

``erasures`` (tombstones of executed erasure commands; see :mod:`sinks.erasure`): kept until
``occurred_at`` of the command + the partner's longest retention + 1 day, after which any row
it could still suppress would be past its own retention anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from core.errors import ConfigError
from schemas.agreements import Agreement
from schemas.codec import CATALOGUE, Catalogue
from schemas.models import SHARED_EMAIL_CLICK, SHARED_TICKET_ORDER
from schemas.sharing import ALWAYS
from sinks.ddl import Column, TableSpec, columns_from_avro, database_name, quote

TICKET_ORDERS = "ticket_orders"
EMAIL_CLICKS = "email_clicks"
CLICK_TYPE = "campaign.email_clicked"
ERASURES = "erasures"
RETAIN_UNTIL = "retain_until"
ORDERS_SORT_KEY = ("purpose", "venue_id", "occurred_at", "event_id")
ORDERS_INDEXES = (
    "event_id_bloom event_id TYPE bloom_filter GRANULARITY 4",
    "subject_bloom subject_pseudonym TYPE bloom_filter GRANULARITY 4",
)
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True)
class Retention:
    """Retention days per agreement id; ``default_days`` for an agreement the sink does not know."""

    days: tuple[tuple[str, int], ...]
    default_days: int

    @classmethod
    def of(cls, agreements: Sequence[Agreement]) -> Retention:
        days: dict[str, int] = {}
        for a in agreements:
            days[a.id] = min(days.get(a.id, a.retention_days), a.retention_days)
        if not days:
            raise ConfigError("no agreement: retention unknown")
        return cls(tuple(sorted(days.items())), min(days.values()))

    @property
    def max_days(self) -> int:
        return max(d for _, d in self.days)

    def days_for(self, agreement_id: str) -> int:
        return dict(self.days).get(agreement_id, self.default_days)

    def until(self, occurred_at_us: int, agreement_id: str) -> date:
        """The same date as the column default computes (``toDate`` of a UTC timestamp)."""
        day = _EPOCH_DAY + timedelta(microseconds=occurred_at_us)
        return day + timedelta(days=self.days_for(agreement_id))

    def cutoffs(self, today_: date) -> tuple[dict[str, int], int]:
        """Per agreement (and for unknown ones), the first ``occurred_at`` (µs since the epoch)
        still retained on ``today_``: ``until(t, a) > today_`` iff ``t >= cutoff(a)``."""

        def cutoff(days: int) -> int:
            return (today_ - timedelta(days=days - 1) - _EPOCH_DAY) // timedelta(microseconds=1)

        return {a: cutoff(d) for a, d in self.days}, cutoff(self.default_days)

    def default_sql(self) -> str:
        """``retain_until``'s ``DEFAULT``: ``toDate(occurred_at) + transform(agreement_id, ...)``."""
        ids = ", ".join(_literal(i) for i, _ in self.days)
        days = ", ".join(str(d) for _, d in self.days)
        return f"toDate(occurred_at) + transform(agreement_id, [{ids}], [{days}], {self.default_days})"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def shared_columns(catalogue: Catalogue = CATALOGUE, name: str = SHARED_TICKET_ORDER) -> tuple[Column, ...]:
    """Columns of every field of every registered version of ``name``, latest order first."""
    seen: dict[str, Column] = {}
    for entry in reversed(catalogue.versions(name)):
        for column in columns_from_avro(entry.raw):
            seen.setdefault(column.name, column)
    return tuple(seen.values())


@dataclass(frozen=True)
class PartnerTables:
    """Everything the partner sink needs to know about the partner's database."""

    partner: str
    database: str
    agreements: tuple[Agreement, ...]
    retention: Retention
    orders: TableSpec
    erasures: TableSpec
    clicks: TableSpec | None = None  # only when an agreement of the partner covers e-mail clicks

    @property
    def all(self) -> tuple[TableSpec, ...]:
        return (*self.shared, self.erasures)

    @property
    def shared(self) -> tuple[TableSpec, ...]:
        """The tables of shared events (``ticket_orders`` first), each with ``retain_until``."""
        return (self.orders,) if self.clicks is None else (self.orders, self.clicks)


def shared_spec(
    database: str, name: str, columns: Sequence[Column], allowed: set[str], retention: Retention
) -> TableSpec:
    """A table of shared events: the always-present and allowed ``columns``, then ``retain_until``
    (sort key, partitions, TTL and indexes as described in the module doc)."""
    projected = tuple(c for c in columns if c.name in ALWAYS or c.name in allowed)
    retain = Column(RETAIN_UNTIL, "Date", "date", default_sql=retention.default_sql())
    return TableSpec(
        database,
        name,
        (*projected, retain),
        ORDERS_SORT_KEY,
        partition_by="toYYYYMM(occurred_at)",
        ttl=f"{RETAIN_UNTIL} DELETE",
        indexes=ORDERS_INDEXES,
    )


def partner_tables(
    partner: str, agreements: Sequence[Agreement], columns: Sequence[Column] | None = None
) -> PartnerTables:
    """The partner's tables under its agreements; :class:`ConfigError` if it has none."""
    mine = tuple(a for a in agreements if a.partner == partner)
    if not mine:
        raise ConfigError(f"no data-sharing agreement names partner {partner!r}: nothing may be stored for it")
    database = database_name(partner)
    retention = Retention.of(mine)
    ordering = [a for a in mine if set(a.event_types) - {CLICK_TYPE}]
    allowed = set().union(*(a.allowed_fields for a in ordering))
    all_columns = tuple(columns) if columns is not None else shared_columns()
    orders = shared_spec(database, TICKET_ORDERS, all_columns, allowed, retention)
    clicking = [a for a in mine if CLICK_TYPE in a.event_types]
    clicks = None
    if clicking:
        click_allowed = set().union(*(a.allowed_fields for a in clicking))
        clicks = shared_spec(database, EMAIL_CLICKS, shared_columns(name=SHARED_EMAIL_CLICK), click_allowed, retention)
    return PartnerTables(partner, database, mine, retention, orders, erasures_spec(database), clicks)


def erasures_spec(database: str) -> TableSpec:
    columns = (
        Column("command_id", "UUID", "uuid"),
        Column("venue_id", "LowCardinality(String)"),
        Column("subject_pseudonym", "String"),
        Column("purposes", "Array(LowCardinality(String))"),
        Column("reason", "LowCardinality(String)"),
        Column("occurred_at", "DateTime64(6, 'UTC')", "timestamp"),
        Column("issued_at", "DateTime64(6, 'UTC')", "timestamp"),
        Column("executed_at", "DateTime64(6, 'UTC')", "timestamp"),
        Column("rows_deleted", "UInt64"),
        Column("keep_until", "Date", "date"),
    )
    return TableSpec(
        database, ERASURES, columns, ("subject_pseudonym", "venue_id", "command_id"), ttl="keep_until DELETE"
    )


def shortened_retention_sql(spec: TableSpec, retention: Retention) -> list[tuple[str, str, dict[str, str | int]]]:
    """Per agreement: ``(count query, mutation, params)`` bringing ``retain_until`` forward for
    rows stored under a longer retention than the agreement now has."""
    where = (
        f"agreement_id = {{a:String}} AND {quote(RETAIN_UNTIL)} > toDate(occurred_at) + {{n:UInt32}}"
    )
    out: list[tuple[str, str, dict[str, str | int]]] = []
    for agreement_id, days in retention.days:
        count = f"SELECT count() FROM {spec.qualified} WHERE {where}"  # noqa: S608
        update = (
            f"ALTER TABLE {spec.qualified} UPDATE {quote(RETAIN_UNTIL)} = toDate(occurred_at) + {{n:UInt32}} "
            f"WHERE {where} SETTINGS mutations_sync = 1"
        )
        out.append((count, update, {"a": agreement_id, "n": days}))
    return out


def today() -> date:
    return datetime.now(UTC).date()
