"""Rows of the published release table (insights/publish.py, pure): each cell's keys land in
``key_a``, ``key_b`` and ``measure`` as the module says, whatever the shape of its key."""

from __future__ import annotations

import pytest

from insights.cells import Cell
from insights.publish import _row

PERSONS = frozenset(range(12))


@pytest.mark.parametrize(("cell", "expected"), [
    (Cell("loyalty", (2025, "chaillot", "spectators"), PERSONS), (2025, "chaillot", "", "spectators")),
    (Cell("overlap", (2025, "chaillot", "gemeaux"), PERSONS), (2025, "chaillot", "gemeaux", "persons")),
    (Cell("geography", (2025, "*", "75"), PERSONS), (2025, "*", "75", "persons")),
    (Cell("lead_time", ("danse", "*"), PERSONS), (None, "danse", "*", "persons")),
    (Cell("conversion", ("chaillot", "c1", "clicked"), PERSONS), (None, "chaillot", "c1", "clicked")),
    (Cell("attendance", ("chaillot", "p1", "no_show"), PERSONS), (None, "chaillot", "p1", "no_show")),
    (Cell("acquisition", ("chaillot", "2026-10", "meta"), PERSONS), (None, "chaillot", "2026-10", "meta")),
    (Cell("web_before_purchase", ("chaillot", "page", "/agenda"), PERSONS), (None, "chaillot", "page", "/agenda")),
], ids=lambda v: v.insight if isinstance(v, Cell) else "")
def test_each_key_lands_in_its_column(cell: Cell, expected: tuple[object, ...]) -> None:
    row = _row(cell)
    assert (row["season"], row["key_a"], row["key_b"], row["measure"]) == expected
    assert row["value"] == 12
