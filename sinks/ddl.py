"""ClickHouse DDL and rows derived from Avro schemas (pure, no I/O).

Avro schemas are the truth: :func:`columns_from_avro` maps each field to a :class:`Column`; a
:class:`TableSpec` (columns, engine, sort key, partitioning, TTL, skip indexes) is the
declarative definition of one table, and every statement below is computed from it, so a new
optional field in an ``.avsc`` becomes a new column without code changes. Which columns a
partner table holds (the agreement's projection) is decided in :mod:`sinks.tables`.

Type mapping: ``string``/uuid -> ``UUID``, ``long``/timestamp-micros -> ``DateTime64(6, 'UTC')``,
``long``/timestamp-millis -> ``DateTime64(3, 'UTC')``, ``int``/date -> ``Date32``, ``int`` ->
``Int32``, ``long`` -> ``Int64``, ``string`` -> ``String``, ``boolean`` -> ``Bool``, ``float`` /
``double`` -> ``Float32`` / ``Float64``; a union with ``null`` wraps the type in ``Nullable``;
fields in :data:`LOW_CARDINALITY` become ``LowCardinality(...)``. Anything else (records, arrays,
maps, bytes, other unions) raises ``ValueError``: partner tables are flat by design.

Rows: :func:`row_from_record` turns a decoded record into a JSON-serializable ``dict`` (UUIDs as
canonical strings, timestamps as ``'YYYY-MM-DD HH:MM:SS.ffffff'`` in UTC) ready for
``FORMAT JSONEachRow``. It raises :class:`InvalidMessage` (stage ``row``) for a record that
ClickHouse could not store faithfully (missing required field, bad UUID, timestamp outside the
``DateTime64`` range), so that such a message goes to the DLQ instead of blocking a partition.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeAlias

from core.errors import ConfigError, InvalidMessage
from schemas.codec import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER

RowValue: TypeAlias = str | int | float | bool | None
Row: TypeAlias = dict[str, RowValue]
Kind = Literal["plain", "uuid", "timestamp", "date"]

LOW_CARDINALITY = frozenset(
    {"discipline", "tariff", "channel", "currency", "venue_id", "event_type", "purpose", "agreement_id"}
)
DEDUP_WINDOW = 1000
"""``non_replicated_deduplication_window``: recent insert blocks whose token is remembered."""

_PRIMITIVES = {
    "string": "String",
    "int": "Int32",
    "long": "Int64",
    "boolean": "Bool",
    "float": "Float32",
    "double": "Float64",
}
_TS_PRECISION = {"timestamp-micros": 6, "timestamp-millis": 3}
# DateTime64 can hold 1900-01-01 .. 2299-12-31 23:59:59.999999; outside, ClickHouse saturates.
_TS_MIN = datetime(1900, 1, 1, tzinfo=UTC)
_TS_MAX = datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PARTNER_RE = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Column:
    """One table column: name, full ClickHouse type, how to convert its value, SQL default."""

    name: str
    ch_type: str
    kind: Kind = "plain"
    nullable: bool = False
    precision: int = 6
    default_sql: str | None = None

    def definition(self) -> str:
        """The column as it appears in ``CREATE TABLE`` / ``ADD COLUMN``."""
        default = f" DEFAULT {self.default_sql}" if self.default_sql is not None else ""
        return f"{quote(self.name)} {self.ch_type}{default}"


def quote(identifier: str) -> str:
    """Backquote a ClickHouse identifier."""
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def database_name(partner_id: str) -> str:
    """The partner's database: lower-cased, hyphens -> underscores, only ``[a-z0-9_]``.

    Raises :class:`ConfigError` for an id that would need any other character.
    """
    name = partner_id.strip().lower().replace("-", "_")
    if not _PARTNER_RE.match(name):
        raise ConfigError(f"partner id {partner_id!r} cannot name a database (allowed: a-z 0-9 _ -)")
    return name


def _base_type(field: str, avro: Any) -> tuple[str, Kind, int]:
    if isinstance(avro, str) and avro in _PRIMITIVES:
        return _PRIMITIVES[avro], "plain", 6
    if isinstance(avro, dict):
        logical, base = avro.get("logicalType"), avro.get("type")
        if logical == "uuid" and base == "string":
            return "UUID", "uuid", 6
        if logical in _TS_PRECISION and base == "long":
            precision = _TS_PRECISION[logical]
            return f"DateTime64({precision}, 'UTC')", "timestamp", precision
        if logical == "date" and base == "int":
            return "Date32", "date", 6
        if base == "enum":
            return "String", "plain", 6
        if isinstance(base, str) and base in _PRIMITIVES and logical is None:
            return _PRIMITIVES[base], "plain", 6
    raise ValueError(f"field {field!r}: Avro type {avro!r} has no flat ClickHouse mapping")


def _default_sql(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise ValueError(f"default {value!r} cannot be expressed in SQL")


def column_from_field(field: Mapping[str, Any]) -> Column:
    """Map one Avro record field to a :class:`Column`."""
    name, avro = str(field["name"]), field["type"]
    nullable = False
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        if len(branches) != 1 or len(avro) != 2:
            raise ValueError(f"field {name!r}: only unions of null and one type are supported")
        avro, nullable = branches[0], True
    ch_type, kind, precision = _base_type(name, avro)
    is_enum = isinstance(avro, dict) and avro.get("type") == "enum"
    if nullable:
        ch_type = f"Nullable({ch_type})"
    if ch_type in ("String", "Nullable(String)") and (name in LOW_CARDINALITY or is_enum):
        ch_type = f"LowCardinality({ch_type})"
    default = _default_sql(field["default"]) if "default" in field and kind == "plain" else None
    return Column(name, ch_type, kind, nullable, precision, default)


def columns_from_avro(schema: Mapping[str, Any]) -> tuple[Column, ...]:
    """All columns of an Avro record schema, in field order."""
    if schema.get("type") != "record":
        raise ValueError("partner tables are built from Avro record schemas")
    return tuple(column_from_field(f) for f in schema["fields"])


COLUMNS: tuple[Column, ...] = columns_from_avro(CATALOGUE.entry(SHARED_TICKET_ORDER).raw)
"""Every column of the latest SharedTicketOrder schema (rows built by :func:`row_from_record`)."""


@dataclass(frozen=True)
class TableSpec:
    """Declarative definition of one table (Snuba-style storage config)."""

    database: str
    name: str
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    partition_by: str | None = None
    ttl: str | None = None
    indexes: tuple[str, ...] = ()
    engine: str = "ReplacingMergeTree"
    settings: tuple[tuple[str, int], ...] = (("non_replicated_deduplication_window", DEDUP_WINDOW),)

    @property
    def qualified(self) -> str:
        return f"{quote(self.database)}.{quote(self.name)}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote(database)}"


def create_table_sql(spec: TableSpec) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``spec``."""
    body = ",\n".join([*(f"    {c.definition()}" for c in spec.columns), *(f"    INDEX {i}" for i in spec.indexes)])
    lines = [f"CREATE TABLE IF NOT EXISTS {spec.qualified}\n(\n{body}\n)", f"ENGINE = {spec.engine}"]
    if spec.partition_by:
        lines.append(f"PARTITION BY {spec.partition_by}")
    lines.append(f"ORDER BY ({', '.join(spec.order_by)})")
    if spec.ttl:
        lines.append(f"TTL {spec.ttl}")
    if spec.settings:
        lines.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in spec.settings))
    return "\n".join(lines)


def add_missing_columns_sql(spec: TableSpec, existing: Collection[str]) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for each column of ``spec`` not in ``existing``.

    Schema evolution only adds fields (Avro backward compatibility) and a wider projection only
    adds columns, so only additions are generated: a column that leaves the projection is kept
    with its data (new rows hold NULL), a changed type is not detected here.
    A missing column that is part of the sort key is added in one ``ALTER`` with the
    ``MODIFY ORDER BY`` that appends it to the key (ClickHouse accepts a key extended only by
    columns added in the same statement), so the key of an existing table follows the spec's.
    """
    missing = [c for c in spec.columns if c.name not in existing]
    keyed = [c for c in missing if c.name in spec.order_by]
    statements = [f"ALTER TABLE {spec.qualified} ADD COLUMN IF NOT EXISTS {c.definition()}"
                  for c in missing if c not in keyed]
    if keyed:
        adds = ", ".join(f"ADD COLUMN IF NOT EXISTS {c.definition()}" for c in keyed)
        statements.append(f"ALTER TABLE {spec.qualified} {adds}, MODIFY ORDER BY ({', '.join(spec.order_by)})")
    return statements


def modify_default_sql(spec: TableSpec, column: Column) -> str:
    """``ALTER TABLE ... MODIFY COLUMN`` setting the column's ``DEFAULT`` (metadata only)."""
    return f"ALTER TABLE {spec.qualified} MODIFY COLUMN {column.definition()}"


def columns_sql(database: str, table: str) -> tuple[str, dict[str, str]]:
    """Query (and parameters) listing ``(name, default_expression)`` of an existing table."""
    return (
        "SELECT name, default_expression FROM system.columns WHERE database = {d:String} AND table = {t:String}",
        {"d": database, "t": table},
    )


def _timestamp(value: Any, column: Column) -> str:
    if isinstance(value, datetime):
        ts = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    elif isinstance(value, int) and not isinstance(value, bool):
        unit = 1 if column.precision == 6 else 1000
        ts = _EPOCH + timedelta(microseconds=value * unit)
    else:
        raise InvalidMessage("row", "bad_timestamp", f"{column.name}: {type(value).__name__}")
    if not _TS_MIN <= ts <= _TS_MAX:
        raise InvalidMessage("row", "timestamp_out_of_range", f"{column.name}: year {ts.year}")
    return ts.strftime("%Y-%m-%d %H:%M:%S.%f")


def _convert(value: Any, column: Column) -> RowValue:
    if column.kind == "uuid":
        try:
            return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            raise InvalidMessage("row", "bad_uuid", column.name) from None
    if column.kind == "timestamp":
        return _timestamp(value, column)
    if column.kind == "date":
        return value.isoformat() if isinstance(value, date) else str(_EPOCH.date() + timedelta(days=int(value)))
    if isinstance(value, str | int | float | bool):
        return value
    raise InvalidMessage("row", "bad_value", f"{column.name}: {type(value).__name__}")


def row_from_record(record: Mapping[str, Any], columns: Sequence[Column] = COLUMNS) -> Row:
    """Convert a decoded record into a JSON-serializable row holding exactly ``columns``."""
    row: Row = {}
    for column in columns:
        value = record.get(column.name)
        if value is None:
            if not column.nullable and column.default_sql is None:
                raise InvalidMessage("row", "missing_field", column.name)
            if column.nullable:
                row[column.name] = None
            continue
        row[column.name] = _convert(value, column)
    return row


def to_json_each_row(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Serialize rows as newline-delimited JSON (ClickHouse ``FORMAT JSONEachRow``)."""
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode()


def parse_json_compact(data: bytes) -> list[tuple[Any, ...]]:
    """Parse a ``FORMAT JSONCompactEachRow`` result into tuples of JSON values."""
    return [tuple(json.loads(line)) for line in data.splitlines() if line.strip()]
