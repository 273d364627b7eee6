"""ClickHouse server store through clickhouse-connect (production / scale-out).

Same table, DDL, rows and idempotence as :mod:`sinks.chdb`; only the transport differs:
rows go as one ``JSONEachRow`` body through ``raw_insert`` with the setting
``insert_deduplication_token``. Every driver or server failure is raised as
:class:`~techne.errors.StoreUnavailable` (insert errors reduced to code and name, so that row
contents never reach logs).

The client is injected, so any clickhouse-connect client works: an HTTP client from
:func:`connect` in production, or ``clickhouse_connect.get_client(interface="chdb", path=...)``
to exercise this very class against the embedded engine in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks import ddl
from sinks.chdb import redact
from sinks.ddl import Row
from techne.errors import StoreUnavailable

_ID_CHUNK = 10_000
_FMT = "JSONCompactEachRow"
_JSON_SETTINGS = {"output_format_json_quote_64bit_integers": 0}


def connect(dsn: str, database: str, **kwargs: Any) -> ServerStore:
    """A :class:`ServerStore` on a server given by DSN (``http://user:pass@host:8123``)."""
    try:
        client = clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except ClickHouseError as exc:
        raise StoreUnavailable(f"cannot connect to ClickHouse: {exc}") from exc
    return ServerStore(client, database)


class ServerStore:
    """A partner's ``ticket_orders`` table on a ClickHouse server (or any clickhouse-connect client)."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database

    def _rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            data = self.client.raw_query(sql, parameters=parameters, settings=_JSON_SETTINGS, fmt=_FMT)
        except ClickHouseError as exc:
            raise StoreUnavailable(f"ClickHouse {self.database}: {str(exc)[:500]}") from exc
        return ddl.parse_json_compact(data)

    def _command(self, sql: str) -> None:
        try:
            self.client.command(sql)
        except ClickHouseError as exc:
            raise StoreUnavailable(f"ClickHouse {self.database}: {str(exc)[:500]}") from exc

    def ensure_schema(self) -> None:
        self._command(ddl.create_database_sql(self.database))
        self._command(ddl.create_table_sql(self.database))
        existing = {
            str(name)
            for (name,) in self._rows(
                "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}",
                {"d": self.database, "t": ddl.TABLE},
            )
        }
        for statement in ddl.add_missing_columns_sql(self.database, existing):
            self._command(statement)
        self.client.database = self.database  # ad-hoc queries may name ticket_orders unqualified

    def existing_event_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        sql = ddl.existing_ids_sql(self.database)
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = list(ids[start : start + _ID_CHUNK])
            found.update(str(r[0]) for r in self._rows(sql, {"ids": chunk}))
        return found

    def insert(self, rows: Sequence[Row], dedup_token: str) -> None:
        if not rows:
            return
        try:
            self.client.raw_insert(
                ddl.qualified_table(self.database),
                insert_block=ddl.to_json_each_row(rows),
                fmt="JSONEachRow",
                settings={"insert_deduplication_token": dedup_token},
            )
        except ClickHouseError as exc:
            raise StoreUnavailable(f"ClickHouse {self.database}: {redact(str(exc))}") from exc

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._rows(sql)

    def close(self) -> None:
        self.client.close()
