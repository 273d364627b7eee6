"""ClickHouse server store through clickhouse-connect (production / scale-out).

The same :class:`~sinks.base.Store` as :mod:`sinks.chdb`, so the same tables, statements,
inserts and idempotence run on both; only the transport differs: statements through
``command``/``raw_query`` with server-side parameter binding, inserts through ``raw_insert``
(the encoded body as is, in its ClickHouse input format) with the setting
``insert_deduplication_token``. Every driver or server failure is raised as
:class:`~core.errors.StoreUnavailable` (insert errors reduced to code and name, so that row
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

from core.errors import StoreUnavailable
from sinks.base import Params
from sinks.chdb import redact
from sinks.ddl import parse_json_compact

_FMT = "JSONCompactEachRow"
_JSON_SETTINGS = {"output_format_json_quote_64bit_integers": 0}


def connect(dsn: str, **kwargs: Any) -> ServerStore:
    """A :class:`ServerStore` on a server given by DSN (``http://user:pass@host:8123``)."""
    try:
        client = clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except ClickHouseError as exc:
        raise StoreUnavailable(f"cannot connect to ClickHouse: {exc}") from exc
    return ServerStore(client)


class ServerStore:
    """A ClickHouse server (or any clickhouse-connect client) as a :class:`~sinks.base.Store`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def command(self, sql: str, params: Params | None = None) -> None:
        try:
            self.client.command(sql, parameters=dict(params) if params else None)
        except ClickHouseError as exc:
            raise StoreUnavailable(f"ClickHouse: {str(exc)[:500]}") from exc

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        try:
            data = self.client.raw_query(
                sql, parameters=dict(params) if params else None, settings=_JSON_SETTINGS, fmt=_FMT
            )
        except ClickHouseError as exc:
            raise StoreUnavailable(f"ClickHouse: {str(exc)[:500]}") from exc
        return parse_json_compact(data)

    def insert(self, table: str, columns: Sequence[str], data: bytes, fmt: str, token: str) -> None:
        try:
            self.client.raw_insert(
                table,
                column_names=list(columns),
                insert_block=data,
                fmt=fmt,
                settings={"insert_deduplication_token": token},
            )
        except ClickHouseError as exc:
            raise StoreUnavailable(f"ClickHouse: {redact(str(exc))}") from exc

    def use(self, database: str) -> None:
        self.client.database = database

    def close(self) -> None:
        self.client.close()
