"""What SQL written by a store's reader (``techne query``: a partner's analyst, a venue's team) may
do: read that store's own database, nothing else.

The engine's ``readonly = 1`` refuses writes and setting changes; it does not stop a read of
another database or of the ``system`` tables, nor table functions such as ``merge()``, ``view()``
or ``mergeTreeIndex()``. :func:`refusal` decides on the engine's own parse of the statement
(``EXPLAIN AST``, so comments, quoting and letter case cannot hide anything; string literals are
escaped on one line) and names the reason:

- the statement is one ``SELECT`` (CTEs, window functions, ``UNION``, subqueries, ``FORMAT``),
  ``EXPLAIN`` of one, ``DESCRIBE`` a table, or ``SHOW TABLES``; anything else is refused;
- every table is of the store's own database (unqualified, or qualified by that database), also
  a table named on the right of ``IN`` (``'x' IN other.t`` would tell whether ``other.t`` holds ``'x'``);
- a table function only generates rows (``numbers``, ``values``, ``null``, …) or is ``view()``
  (whose tables obey the same rule);
- no function reads outside the database (``file``, ``joinGet``, dictionaries, server settings).

:func:`run` checks, then runs the statement. An engine error on the statement (syntax, unknown
column, wrong type, row cap) is :class:`ReadRefused` too (exit 2: fix the SQL, retrying will not
help); only the engine's transient failures (timeout, memory, too many queries, network) stay
:class:`~core.errors.StoreUnavailable`.
"""

from __future__ import annotations

import re

from core.errors import ReadRefused, StoreUnavailable
from sinks.reader import Reader

STATEMENTS = {"SelectWithUnionQuery", "DescribeQuery", "ShowTables"}
TABLE_FUNCTIONS = {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "null", "generaterandom",
                   "generate_series", "generateseries", "view"}
_OUTSIDE_FUNCTIONS = re.compile(r"file|joinget.*|dict.*|hascolumnintable|getserversetting|getmergetreesetting"
                                r"|catboostevaluate|modelevaluate|filesystem.*|getmacro")
_IN_FUNCTIONS = {"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin", "globalnotnullin"}
TRANSIENT_CODES = {159, 202, 209, 210, 241, 425}
"""Timeout, too many simultaneous queries, socket timeout, network error, memory limit, system error."""
_ENGINE_ERROR = re.compile(r"ClickHouse error (\d+) ?(\w*)")
_NODE = re.compile(r"^( *)(\S+)(?: (.*?))?(?: \(alias [^)]*\))?(?: \(children \d+\))?$")


def _nodes(ast: str) -> list[tuple[int, str, str]]:
    """``(depth, node, argument)`` per line of ``EXPLAIN AST`` output."""
    nodes = []
    for line in ast.splitlines():
        match = _NODE.match(line.rstrip())
        if match:
            nodes.append((len(match.group(1)), match.group(2), (match.group(3) or "").strip()))
    return nodes


def _outside(name: str, database: str) -> bool:
    """Whether the table name ``name`` (as the AST shows it) may be outside ``database``."""
    return "." in name and (name.count(".") > 1 or not name.startswith(f"{database}."))


def _in_tables(nodes: list[tuple[int, str, str]]) -> list[str]:
    """Names given as the right operand of an ``IN`` (an identifier there names a table)."""
    names = []
    for i, (depth, node, arg) in enumerate(nodes):
        if node == "Function" and arg.lower() in _IN_FUNCTIONS:
            operands = []
            for child_depth, child, child_arg in nodes[i + 1:]:
                if child_depth <= depth:
                    break
                if child_depth == depth + 2:
                    operands.append((child, child_arg))
            if len(operands) > 1 and operands[1][0] == "Identifier":
                names.append(operands[1][1])
    return names


def refusal(ast: str, database: str) -> str | None:
    """Why the statement parsed as ``ast`` may not run on ``database``, or None if it may."""
    nodes = _nodes(ast)
    if not nodes:
        return "empty statement"
    statement = nodes[1][1] if nodes[0][1] == "Explain" and len(nodes) > 1 else nodes[0][1]
    if statement not in STATEMENTS:
        return f"only SELECT, EXPLAIN, DESCRIBE and SHOW TABLES are allowed here, not {statement}"
    if statement == "ShowTables" and len(nodes) > 1 and nodes[1] != (nodes[1][0], "Identifier", database):
        return f"SHOW TABLES FROM {nodes[1][2]}: only this store's database {database} may be read"
    for (depth, node, arg), following in zip(nodes, [*nodes[1:], None], strict=True):
        if node == "TableIdentifier" and _outside(arg, database):
            return f"table {arg}: only this store's database {database} may be read"
        elif node == "Function" and _OUTSIDE_FUNCTIONS.fullmatch(arg.lower()):
            return f"function {arg}() reads outside this store's database {database}"
        elif node == "TableExpression" and following is not None and following[1] == "Function" \
                and following[0] > depth and following[2].lower() not in TABLE_FUNCTIONS:
            return f"table function {following[2]}() reads outside this store's database {database}"
    for name in _in_tables(nodes):
        if _outside(name, database):
            return f"table {name} (after IN): only this store's database {database} may be read"
    return None


def check(reader: Reader, database: str, sql: str) -> None:
    """Raise :class:`ReadRefused` with the reason if ``sql`` may not run on ``database`` (see module doc)."""
    if not sql.strip():
        raise ReadRefused("empty statement")
    why = refusal(reader.query_text(f"EXPLAIN AST {sql}", "TSVRaw"), database)
    if why is not None:
        raise ReadRefused(f"refused: {why}")


def run(reader: Reader, database: str, sql: str, fmt: str) -> str:
    """Check ``sql`` (:func:`check`), run it and return its output in ``fmt`` (see module doc)."""
    try:
        check(reader, database, sql)
        return reader.query_text(sql, fmt)
    except StoreUnavailable as exc:
        match = _ENGINE_ERROR.search(str(exc))
        if match is None or int(match.group(1)) in TRANSIENT_CODES:
            raise
        hint = " (one statement at a time)" if match.group(2) == "SYNTAX_ERROR" and ";" in sql.strip().rstrip(";") \
            else ""
        raise ReadRefused(f"the engine refused the statement: ClickHouse error {match.group(1)} "
                          f"{match.group(2)}{hint}") from None
