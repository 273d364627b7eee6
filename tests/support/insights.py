"""Shared by several test modules (tests never import each other)."""

from __future__ import annotations

from insights.cells import CellId, Partition
from insights.protect import Protected


def check_release(p: Protected, partitions: list[Partition]) -> None:
    """Every guarantee of insights.protect, checked from the outside on a protected release."""
    k = p.k
    shown = [c for cid, c in p.cells.items() if p.published(cid)]
    known_sets = {c.persons for c in shown}
    for c in shown:
        assert c.size >= k, f"{c.id} publishes {c.size} < {k}"
    for x in shown:
        for y in shown:
            if y.persons < x.persons:
                assert x.size - y.size >= k, f"{x.id} - {y.id} = {x.size - y.size} < {k}"

    def known(cid: CellId) -> bool:
        return cid not in p.cells or p.cells[cid].persons in known_sets

    for part in partitions:
        if part.parent not in p.cells:
            continue
        unknown = [c for c in part.children if not known(c)]
        if known(part.parent):
            assert len(unknown) != 1, f"{part.parent}: one hidden child is derivable"
            hidden = sum(p.cells[c].size for c in unknown)
            assert hidden == 0 or hidden >= k, f"{part.parent}: hidden children sum to {hidden} < {k}"
        elif any(c in p.cells for c in part.children):
            assert unknown, f"{part.parent} is hidden but its children add up to it"
