"""Small-cell protection of a whole release (pure).

A release is every cell that ``techne insights`` can show for a partner at once (all insights,
all seasons, all venues): each invocation computes and protects that same release and then only
*selects* rows from it (``--season``, ``--venue``); no option re-aggregates, filters the data or
changes a definition (the conversion window, the frequency buckets, the season boundaries are
fixed). So any two outputs the CLI can produce on the same data are parts of one protected
release, and differencing them is differencing cells of that release, which the rules below
cover. Rules, applied until none changes anything (each only suppresses, so this ends):

1. **threshold** — a cell with fewer than ``k`` distinct persons is suppressed;
2. **differencing** — for two published cells ``Y ⊂ X`` (the persons of ``Y`` are among those of
   ``X``, whatever insights they come from) with ``0 < |X| - |Y| < k``, ``Y`` is suppressed: the
   difference of the two published counts would describe fewer than ``k`` persons. Checked on
   the actual sets of persons, so it also covers nestings that no definition states;
3. **complementary** — in a :class:`~insights.cells.Partition` whose parent is published, the
   suppressed children must be none, or at least two summing to ``k`` persons or more (else the
   parent minus the published children gives them away): the smallest published child is
   suppressed until that holds. If the parent is suppressed, at least one of its non-empty
   children is too (else their sum gives the parent away);
4. **same persons, same fate** — cells holding exactly the same persons (e.g. a venue's
   spectators in the overlap diagonal and in the loyalty table) are suppressed together.

What this does not cover (see docs/insights.md): combinations of three or more cells outside a
partition, and differencing releases computed on different data (the store changes between two
runs); those would need noise (differential privacy).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from insights.cells import Cell, CellId, Partition

THRESHOLD, DIFFERENCING, COMPLEMENTARY, SAME_PERSONS = "threshold", "differencing", "complementary", "same_persons"
REASONS = (THRESHOLD, DIFFERENCING, COMPLEMENTARY, SAME_PERSONS)


@dataclass
class Protected:
    """Cells of a release with their fate: ``suppressed[cell_id] = reason`` for hidden ones."""

    k: int
    cells: dict[CellId, Cell]
    suppressed: dict[CellId, str] = field(default_factory=dict)

    def published(self, cell_id: CellId) -> bool:
        return cell_id in self.cells and cell_id not in self.suppressed

    def value(self, cell_id: CellId) -> int | None:
        return self.cells[cell_id].size if self.published(cell_id) else None

    def counts(self, insight: str) -> dict[str, int]:
        """``{"cells": n, "published": n, "suppressed": n, "<reason>": n, ...}`` for one insight."""
        mine = [cid for cid in self.cells if cid[0] == insight]
        reasons = Counter(self.suppressed[cid] for cid in mine if cid in self.suppressed)
        hidden = sum(reasons.values())
        return {"cells": len(mine), "published": len(mine) - hidden, "suppressed": hidden,
                **{r: reasons.get(r, 0) for r in REASONS}}


def _differencing(p: Protected) -> bool:
    k = p.k
    live = sorted((c for cid, c in p.cells.items() if cid not in p.suppressed), key=lambda c: c.size)
    changed = False
    for i, small in enumerate(live):
        if small.id in p.suppressed:
            continue
        for big in live[i + 1:]:
            gap = big.size - small.size
            if gap >= k:
                break
            if gap > 0 and big.id not in p.suppressed and small.persons < big.persons:
                p.suppressed[small.id] = DIFFERENCING
                changed = True
                break
    return changed


def _complementary(p: Protected, partitions: Sequence[Partition]) -> bool:
    changed = False
    for part in partitions:
        if part.parent not in p.cells:
            continue
        children = [c for c in part.children if c in p.cells]
        hidden = [c for c in children if c in p.suppressed]
        shown = sorted((c for c in children if c not in p.suppressed), key=lambda c: (p.cells[c].size, c))
        if not shown:
            continue
        if p.published(part.parent):
            hidden_sum = sum(p.cells[c].size for c in hidden)
            unsafe = len(hidden) == 1 or 0 < hidden_sum < p.k
        else:
            unsafe = not hidden
        if unsafe:
            p.suppressed[shown[0]] = COMPLEMENTARY
            changed = True
    return changed


def _same_persons(p: Protected) -> bool:
    groups: dict[frozenset[int], list[CellId]] = defaultdict(list)
    for cid, cell in p.cells.items():
        groups[cell.persons].append(cid)
    changed = False
    for ids in groups.values():
        if len(ids) > 1 and any(c in p.suppressed for c in ids):
            for c in ids:
                if c not in p.suppressed:
                    p.suppressed[c] = SAME_PERSONS
                    changed = True
    return changed


def protect(cells: Sequence[Cell], partitions: Sequence[Partition], k: int) -> Protected:
    """Apply the four rules of the module doc to a whole release."""
    if k < 2:
        raise ValueError("k must be at least 2")
    p = Protected(k, {c.id: c for c in cells})
    for cid, cell in p.cells.items():
        if cell.size < k:
            p.suppressed[cid] = THRESHOLD
    while _differencing(p) | _complementary(p, partitions) | _same_persons(p):
        pass
    return p
