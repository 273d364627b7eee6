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

The other kinds (:mod:`schemas.kinds`: ``campaign_events``, ``ticket_scans``, ``page_views``,
``content_interactions``, ``ad_spend``) get a table each by the same rules, only for a partner
with an agreement covering one of their event types; each is fed by its own partner topic
(:attr:`PartnerTables.streams`). ``ticket_orders`` holds one row per order lifecycle event
(``status``: placed, paid, issued, cancelled, refunded, exchanged; ``order_ref``: the order,
pseudonymized); the view ``ticket_orders_current`` (:func:`current_orders_sql`) folds them into
one row per order in its latest state, so that refunded or cancelled orders stop counting.

**The venue's own store** (:func:`venue_tables`) is built the same way with every field of
every kind (the venue holds its own data) plus ``audience_measurement`` (consent-exempt
measurement, 25-month retention), in database ``venue_<venue>``, fed by ``venue.<venue>.*``.

``erasures`` (tombstones of executed erasure commands; see :mod:`sinks.erasure`): kept until
``occurred_at`` of the command + the partner's longest retention + 1 day, after which any row
it could still suppress would be past its own retention anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from core.errors import ConfigError
from core.topics import partner_topic, venue_topic
from schemas.agreements import Agreement
from schemas.codec import CATALOGUE, Catalogue
from schemas.kinds import (
    KINDS,
    MEASUREMENT_RETENTION_DAYS,
    MEASUREMENT_SCHEMA,
    MEASUREMENT_STREAM,
    MEASUREMENT_TABLE,
    TICKETING,
    measurement_agreement_id,
    own_agreement_id,
)
from schemas.models import SHARED_TICKET_ORDER
from schemas.sharing import ALWAYS
from sinks.ddl import Column, TableSpec, columns_from_avro, database_name, quote

TICKET_ORDERS = "ticket_orders"
EMAIL_CLICKS = "email_clicks"
CLICK_TYPE = "campaign.email_clicked"
CURRENT_ORDERS = "ticket_orders_current"
VENUE_STORE = "venue:"
"""Prefix of a venue's own store id (``venue:<venue>``) where a partner id is expected."""
VENUE_RETENTION_DAYS = 1095
"""How long the venue's own store keeps its own rows (3 years) unless told otherwise."""
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
    """Everything a sink needs to know about the database it writes: a partner's, or a venue's own
    store (``partner`` is then ``venue:<venue>``, see :func:`venue_tables`)."""

    partner: str
    database: str
    agreements: tuple[Agreement, ...]
    retention: Retention
    orders: TableSpec
    erasures: TableSpec
    others: tuple[tuple[str, str, TableSpec], ...] = ()
    """(stream, shared schema, table) of every other kind the store keeps, in :data:`KINDS` order."""
    prefix: str = ""
    """Topic prefix: ``partner.<id>`` (the default) or ``venue.<venue>``."""

    @property
    def all(self) -> tuple[TableSpec, ...]:
        return (*self.shared, self.erasures)

    @property
    def shared(self) -> tuple[TableSpec, ...]:
        """The tables of shared events (``ticket_orders`` first), each with ``retain_until``."""
        return (self.orders, *(spec for _, _, spec in self.others))

    @property
    def streams(self) -> tuple[tuple[str, str, TableSpec], ...]:
        """(topic, shared schema, table) of every table of shared events, ``ticket_orders`` first."""
        return ((self.topic(TICKETING.stream), SHARED_TICKET_ORDER, self.orders),
                *((self.topic(stream), schema, spec) for stream, schema, spec in self.others))

    @property
    def clicks(self) -> TableSpec | None:
        """``email_clicks``, when an agreement of the partner covers e-mail clicks."""
        return next((spec for _, _, spec in self.others if spec.name == EMAIL_CLICKS), None)

    def topic(self, stream: str) -> str:
        """The topic of one of this store's streams (``erasure`` included)."""
        return f"{self.prefix}.{stream}" if self.prefix else partner_topic(self.partner, stream)

    @property
    def views(self) -> tuple[str, ...]:
        """``CREATE OR REPLACE VIEW`` statements of the store's views (``ticket_orders_current``)."""
        return (current_orders_sql(self.orders),)


def shared_spec(
    database: str, name: str, columns: Sequence[Column], allowed: set[str] | None, retention: Retention
) -> TableSpec:
    """A table of shared events: the always-present and allowed ``columns`` (``None``: all), then
    ``retain_until`` (sort key, partitions, TTL and indexes as described in the module doc)."""
    projected = tuple(c for c in columns if allowed is None or c.name in ALWAYS or c.name in allowed)
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

    def allowed(kind_types: tuple[str, ...]) -> set[str] | None:
        covering = [a for a in mine if set(a.event_types) & set(kind_types)]
        return set().union(*(a.allowed_fields for a in covering)) if covering else None

    all_columns = tuple(columns) if columns is not None else shared_columns()
    orders = shared_spec(database, TICKET_ORDERS, all_columns, allowed(TICKETING.event_types) or set(), retention)
    others = []
    for kind in KINDS[1:]:
        fields = allowed(kind.event_types)
        if fields is not None:
            spec = shared_spec(database, kind.table, shared_columns(name=kind.schema), fields, retention)
            others.append((kind.stream, kind.schema, spec))
    return PartnerTables(partner, database, mine, retention, orders, erasures_spec(database), tuple(others))


def venue_tables(venue_id: str, retention_days: int = VENUE_RETENTION_DAYS) -> PartnerTables:
    """The venue's own store: every field of every kind, and exempt measurement (module doc)."""
    database = database_name(f"venue_{venue_id}")
    own, measured = own_agreement_id(venue_id), measurement_agreement_id(venue_id)
    retention = Retention(tuple(sorted(((own, retention_days), (measured, MEASUREMENT_RETENTION_DAYS)))),
                          min(retention_days, MEASUREMENT_RETENTION_DAYS))
    orders = shared_spec(database, TICKET_ORDERS, shared_columns(), None, retention)
    others = [(k.stream, k.schema, shared_spec(database, k.table, shared_columns(name=k.schema), None, retention))
              for k in KINDS[1:]]
    others.append((MEASUREMENT_STREAM, MEASUREMENT_SCHEMA, shared_spec(
        database, MEASUREMENT_TABLE, shared_columns(name=MEASUREMENT_SCHEMA), None, retention)))
    return PartnerTables(own, database, (), retention, orders, erasures_spec(database), tuple(others),
                         prefix=venue_topic(venue_id, "").rstrip("."))


LIFECYCLE = ("placed", "paid", "issued", "exchanged", "cancelled", "refunded")
"""Order of an order's lifecycle steps: the later one is its state when two rows carry the same
instant (a CSV export with dates only puts an order and its refund at the same midnight)."""
_ORDER_FACTS = ("production", "production_id", "performance_id", "performance_at", "discipline", "hall",
                "price_category", "tariff", "channel", "departement", "age_band", "currency", "is_invitation")


def current_orders_sql(orders: TableSpec) -> str:
    """``CREATE OR REPLACE VIEW <db>.ticket_orders_current`` over ``orders`` (see
    :func:`current_orders_select`)."""
    select = current_orders_select(orders.database, orders.names)
    return f"CREATE OR REPLACE VIEW {quote(orders.database)}.{quote(CURRENT_ORDERS)} AS\n{select}"


def current_orders_select(database: str, columns: Collection[str]) -> str:
    """The view of each order's current state: one row per ``order_key`` (its ``order_ref``; the
    event id for rows without one, e.g. orders shared before lifecycle events existed) with its
    latest ``status``, ``counts`` (false once cancelled or refunded), the quantity and amount it
    was placed (or paid) with, and each order fact's latest known value (an exchange moves the
    performance). Latest: by ``occurred_at``, then by :data:`LIFECYCLE` step (a cancellation or
    refund at the same instant as the order ends it), then by event id. Source columns are
    renamed ``s_*`` in a subquery, so that no output alias shadows a column an aggregate reads."""
    names = set(columns)
    facts = [c for c in _ORDER_FACTS if c in names]
    inner = ["purpose", "venue_id", "event_id", "occurred_at", "subject_pseudonym", "agreement_id",
             ("coalesce(status, 'placed')" if "status" in names else "'placed'") + " AS s_status",
             ("coalesce(order_ref, toString(event_id))" if "order_ref" in names else "toString(event_id)")
             + " AS order_key", *(f"{quote(c)} AS {quote('s_' + c)}" for c in facts)]
    steps = ", ".join(f"'{step}'" for step in LIFECYCLE)
    latest = f"(occurred_at, indexOf([{steps}], s_status), event_id)"
    outer = ["purpose", "venue_id", "order_key", "argMax(subject_pseudonym, occurred_at) AS subject_pseudonym",
             "argMax(agreement_id, occurred_at) AS agreement_id", f"argMax(s_status, {latest}) AS status",
             f"argMax(s_status, {latest}) NOT IN ('cancelled', 'refunded') AS counts",
             "min(occurred_at) AS placed_at", "max(occurred_at) AS updated_at",
             *(f"argMaxIf({quote('s_' + c)}, {latest}, {quote('s_' + c)} IS NOT NULL) AS {quote(c)}" for c in facts)]
    if "quantity" in names:
        inner.append("quantity AS s_quantity")
        outer.append(f"argMaxIf(s_quantity, {latest}, s_status = 'placed' AND s_quantity IS NOT NULL) AS quantity")
    if "amount_minor" in names:
        inner.append("amount_minor AS s_amount")
        outer.append(f"argMaxIf(s_amount, {latest}, s_status IN ('placed', 'paid') AND s_amount IS NOT NULL)"
                     " AS amount_minor")
    select = ",\n    ".join(outer)
    source = ", ".join(inner)
    return (f"SELECT\n    {select}\nFROM (\n    SELECT {source}\n"  # noqa: S608
            f"    FROM {quote(database)}.{quote(TICKET_ORDERS)}\n)\nGROUP BY purpose, venue_id, order_key")


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
