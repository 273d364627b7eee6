"""Where a venue export's header row is, and whether it names a column twice (pure).

* **Title lines above the header** ("Export des ventes du 01/12/2026", a blank line): among the
  first :data:`SEARCH_ROWS` rows, the header is the first one naming the most of the columns the
  caller expects; the rows above it are ignored, and a note says so. Without expected columns,
  or when no row names one, the header is the first non-empty row.
* **Spelling**: a column name matches an expected one whatever its case, spaces (no-break
  ones, doubled) or accent encoding (:func:`column_key`), and takes the expected spelling.
* **A column named twice**: when the caller reads that column, the file is refused naming it and
  its positions (which cell it meant cannot be guessed, and the last one would silently win);
  a duplicated column it does not read keeps its first cell.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

SEARCH_ROWS = 20


def column_key(name: str) -> str:
    """What identifies a column name: accents composed (NFC), any run of spaces (no-break ones
    included) one space, trimmed, case folded; « E-MAIL » and « E-mail » are one column."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def canonical(header: Sequence[str], expected: Iterable[str]) -> list[str]:
    """``header`` with each name that is an expected column, however spelt, in the expected spelling."""
    spelling = {column_key(name): name for name in expected}
    return [spelling.get(column_key(name), name.strip()) for name in header]


def header_index(rows: Sequence[Sequence[str]], expected: set[str]) -> int:
    """Index in ``rows`` of the header row (see module doc)."""
    keys = {column_key(name) for name in expected}

    def named(row: Sequence[str]) -> int:
        return len(keys & {column_key(c) for c in row})

    candidates = list(rows[:SEARCH_ROWS])
    best = max(range(len(candidates)), key=lambda i: (named(candidates[i]), -i), default=0)
    if candidates and named(candidates[best]) > 0:
        return best
    return next((i for i, row in enumerate(candidates) if any(c.strip() for c in row)), 0)


def skipped_note(line: int) -> tuple[str, str]:
    """The (French, English) note of a header found below line 1."""
    return (f"en-tête lu ligne {line} : les lignes au-dessus sont ignorées",
            f"header read on line {line}: the lines above it are ignored")


def duplicated(header: Sequence[str], expected: set[str]) -> tuple[str, str] | None:
    """The (French, English) reason to refuse ``header``, if it names an expected column twice."""
    for name in dict.fromkeys(header):
        places = [i + 1 for i, h in enumerate(header) if h == name]
        if name and name in expected and len(places) > 1:
            where = ", ".join(map(str, places[:-1]))
            return (f"la colonne « {name} » figure {len(places)} fois (colonnes {where} et {places[-1]}) : "
                    "renommez ou supprimez les autres et réessayez",
                    f"the column '{name}' appears {len(places)} times (columns {where} and {places[-1]}): "
                    "rename or remove the others and try again")
    return None


def row_cells(header: Sequence[str], cells: Sequence[Any]) -> dict[str, Any]:
    """``{column: cell}``; a column named twice keeps its first cell."""
    row: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=False):
        row.setdefault(name, cell)
    return row
