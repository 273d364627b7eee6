"""SQL a store's reader writes (``techne query``) reads that store's database and nothing else
(sinks/partner_sql.py), decided on the real engine's parse of the statement: an analyst's SQL
(CTEs, window functions, FORMAT, comments, long queries) runs; other databases, system tables,
table functions that reach outside, and anything but a read are refused with the reason."""

# ruff: noqa: S608  (SQL texts are the test data)
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ReadRefused, StoreUnavailable
from sinks.chdb import ChdbStore
from sinks.partner_sql import check, run
from sinks.read_server import ReadOnlySession
from sinks.reader import SessionReader

DB = "observatoire"


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionReader]:
    path = tmp_path_factory.mktemp("store") / "observatoire"
    store = ChdbStore(path)
    for sql in (f"CREATE DATABASE IF NOT EXISTS {DB}", "CREATE DATABASE IF NOT EXISTS other",
                "CREATE TABLE other.secret (x String) ENGINE = MergeTree ORDER BY x",
                "INSERT INTO other.secret VALUES ('SECRET')",
                f"CREATE TABLE {DB}.ticket_orders (venue_id String, n Int32) ENGINE = MergeTree ORDER BY venue_id",
                f"INSERT INTO {DB}.ticket_orders VALUES ('gemeaux', 1), ('mixt', 2)"):
        store.command(sql)
    session = ReadOnlySession(path, DB, max_rows=1000, timeout_s=10)
    try:
        yield SessionReader(session)
    finally:
        session.close()
        store.close()


ANALYSIS = [
    "SELECT venue_id, count() FROM ticket_orders GROUP BY ALL",
    "WITH t AS (SELECT venue_id, n FROM ticket_orders) SELECT venue_id, sum(n) OVER (ORDER BY venue_id) FROM t",
    f"-- per venue\nSELECT /* all */ venue_id FROM {DB}.ticket_orders AS o WHERE n IN (SELECT number FROM numbers(3))",
    "SELECT venue_id FROM ticket_orders FORMAT CSV",
    "SELECT venue_id FROM ticket_orders UNION ALL SELECT 'x' FROM values('a String', 'y');",
    "SELECT format('{} {}', venue_id, toString(n)) FROM ticket_orders",
    "SELECT * FROM view(SELECT venue_id FROM ticket_orders)",
    "EXPLAIN SELECT count() FROM ticket_orders",
    "DESCRIBE ticket_orders", "SHOW TABLES", f"SHOW TABLES FROM {DB}",
    "SELECT venue_id FROM ticket_orders WHERE venue_id = 'TableIdentifier system.one\\nFunction file'",
    "SELECT count() FROM ticket_orders WHERE venue_id IN (" + ", ".join(f"'v{i}'" for i in range(5000)) + ")",
]


@pytest.mark.parametrize("sql", ANALYSIS, ids=lambda s: s[:50])
def test_an_analysts_sql_runs(reader: SessionReader, sql: str) -> None:
    check(reader, DB, sql)
    reader.query_text(sql, "TSV")


def test_a_table_of_its_own_after_in_is_allowed(reader: SessionReader) -> None:
    check(reader, DB, f"SELECT 1 WHERE ('gemeaux', 1) IN {DB}.ticket_orders AND 'x' NOT IN ('a', 'b')")
    check(reader, DB, "WITH v AS (SELECT venue_id FROM ticket_orders) "
                      "SELECT count() FROM ticket_orders WHERE venue_id IN v")


ESCAPES = {
    "SELECT * FROM other.secret": "table other.secret",
    "SELECT * FROM `other`.`secret`": "table other.secret",
    "select * from OTHER.secret": "table OTHER.secret",
    "SELECT * FROM ticket_orders JOIN other.secret ON 1": "table other.secret",
    "SELECT * FROM (SELECT * FROM other.secret)": "table other.secret",
    "SELECT * FROM view(SELECT * FROM other.secret)": "table other.secret",
    "WITH s AS (SELECT * FROM other.secret) SELECT * FROM s": "table other.secret",
    "SELECT name FROM system.databases": "table system.databases",
    "SELECT * FROM system.parts": "table system.parts",
    "SELECT * FROM INFORMATION_SCHEMA.TABLES": "table INFORMATION_SCHEMA.TABLES",
    f"SELECT * FROM `{DB}.x`.secret": "only this store's database",
    "SELECT * FROM merge('other', '.*')": "table function merge()",
    "SELECT * FROM mergeTreeIndex(other, secret)": "table function mergeTreeIndex()",
    "SELECT * FROM url('http://127.0.0.1:1/x', CSV, 'a String')": "table function url()",
    "SELECT * FROM s3('http://127.0.0.1:1/x', CSV, 'a String')": "table function s3()",
    "SELECT * FROM remote('127.0.0.1', system.one)": "table function remote()",
    "SELECT * FROM executable('echo hi', CSV, 'a String')": "table function executable()",
    "SELECT * FROM input('a String')": "table function input()",
    "SELECT * FROM Python(x)": "table function Python()",
    "DESCRIBE url('http://127.0.0.1:1/x', CSV)": "table function url()",
    "SELECT file('/etc/passwd')": "file()",
    "SELECT joinGet('other.j', 'x', 1)": "function joinGet()",
    "SELECT dictGet('other.d', 'x', 1)": "function dictGet()",
    "SELECT 'SECRET' IN other.secret": "table other.secret (after IN)",
    "SELECT count() FROM ticket_orders WHERE venue_id GLOBAL NOT IN `other`.secret": "table other.secret (after IN)",
    "SHOW TABLES FROM other": "SHOW TABLES FROM other",
    "SHOW COLUMNS FROM other.secret": "not ShowColumns",
    "INSERT INTO ticket_orders VALUES ('x', 1)": "not InsertQuery",
    "EXPLAIN SYNTAX SELECT * FROM other.secret": "table other.secret",
    "SET readonly = 0": "only SELECT",
    "SYSTEM FLUSH LOGS": "only SELECT",
    "USE other": "only SELECT",
    "   ": "empty statement",
}


@pytest.mark.parametrize(("sql", "reason"), ESCAPES.items(), ids=lambda s: str(s)[:50])
def test_sql_reaching_outside_its_store_is_refused_with_the_reason(reader: SessionReader, sql: str,
                                                                   reason: str) -> None:
    with pytest.raises(ReadRefused) as refused:
        check(reader, DB, sql)
    assert reason in str(refused.value), str(refused.value)


MISTAKES = {
    "SELEC venue_id FROM ticket_orders": "62 SYNTAX_ERROR",
    "SELECT 1; SELECT 2": "SYNTAX_ERROR (one statement at a time)",
    "SELECT no_such_column FROM ticket_orders": "UNKNOWN_IDENTIFIER",
    "SELECT * FROM no_such_table": "UNKNOWN_TABLE",
    "SELECT number FROM numbers(5000)": "TOO_MANY_ROWS_OR_BYTES",
}


@pytest.mark.parametrize(("sql", "reason"), MISTAKES.items(), ids=lambda s: str(s)[:40])
def test_a_mistake_in_the_sql_is_refused_not_transient(reader: SessionReader, sql: str, reason: str) -> None:
    """Exit 2 (fix the SQL), not exit 1 (retry later): the same statement fails again."""
    with pytest.raises(ReadRefused) as refused:
        run(reader, DB, sql, "TSV")
    assert reason in str(refused.value), str(refused.value)


class _Overloaded:
    def query_text(self, sql: str, fmt: str = "TSV") -> str:
        if sql.startswith("EXPLAIN AST"):
            return " SelectWithUnionQuery\n"
        raise StoreUnavailable("read server answered 422: ClickHouse error 159 TIMEOUT_EXCEEDED")

    def query(self, sql: str, params: object = None) -> list[tuple[object, ...]]:
        raise NotImplementedError


def test_an_engine_timeout_stays_transient() -> None:
    with pytest.raises(StoreUnavailable) as failed:
        run(_Overloaded(), DB, "SELECT 1", "TSV")
    assert not isinstance(failed.value, ReadRefused) and "TIMEOUT_EXCEEDED" in str(failed.value)


def test_techne_query_refuses_another_database_exit_2(tmp_path: Path) -> None:
    """Through the command, in its own process (chDB holds one directory per process)."""
    script = (f"from sinks.chdb import ChdbStore\n"
              f"s = ChdbStore(__import__('pathlib').Path({str(tmp_path / 'partners' / 'observatoire')!r}))\n"
              f"for q in ('CREATE DATABASE other', 'CREATE TABLE other.secret (x String) ENGINE = Log',\n"
              f"          \"INSERT INTO other.secret VALUES ('SECRET')\"): s.command(q)\n"
              f"s.close()\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    techne = [str(Path(sys.executable).with_name("techne")), "query", "--partner", "observatoire",
              "--data-dir", str(tmp_path)]
    ok = subprocess.run([*techne, "SELECT count() FROM ticket_orders"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    result = subprocess.run([*techne, "SELECT x FROM other.secret"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "SECRET" not in result.stdout + result.stderr, result
    assert "other.secret" in result.stderr and "Traceback" not in result.stderr, result.stderr
    typo = subprocess.run([*techne, "SELEC 1"], capture_output=True, text=True, timeout=120)
    assert typo.returncode == 2 and "SYNTAX_ERROR" in typo.stderr, typo.stderr
