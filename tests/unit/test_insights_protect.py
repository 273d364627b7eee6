"""Small-cell protection of a release (pure): the rules, and a property test on random releases."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from insights.cells import Cell, Partition
from insights.protect import COMPLEMENTARY, DIFFERENCING, SAME_PERSONS, THRESHOLD, protect
from tests.support.insights import check_release


def cell(name: str, persons: range | set[int]) -> Cell:
    return Cell("t", (name,), frozenset(persons))


def test_threshold_suppresses_cells_below_k() -> None:
    p = protect([cell("a", range(10)), cell("b", range(9))], [], k=10)
    assert p.value(("t", ("a",))) == 10
    assert p.suppressed == {("t", ("b",)): THRESHOLD}


def test_a_subset_close_to_its_superset_is_suppressed() -> None:
    # 30 spectators at A, 27 of them also at B: publishing both would reveal 3 A-only persons
    a, ab = cell("A", range(30)), cell("A&B", range(27))
    p = protect([a, ab, cell("B", range(20, 60))], [], k=10)
    assert p.suppressed == {ab.id: DIFFERENCING}
    assert p.published(a.id)


def test_differencing_needs_actual_inclusion() -> None:
    # same sizes as above but not nested: the difference of the counts describes nobody
    p = protect([cell("A", range(30)), cell("C", range(100, 127))], [], k=10)
    assert not p.suppressed


def test_one_suppressed_child_of_a_published_total_takes_a_second_one_with_it() -> None:
    parent = cell("all", range(100))
    kids = [cell("69", range(60)), cell("75", range(60, 95)), cell("23", range(95, 100))]
    p = protect([parent, *kids], [Partition(parent.id, tuple(k.id for k in kids))], k=10)
    assert p.suppressed == {kids[2].id: THRESHOLD, kids[1].id: COMPLEMENTARY}
    assert p.published(parent.id) and p.published(kids[0].id)


def test_suppressed_children_summing_below_k_take_more_with_them() -> None:
    parent = cell("all", range(100))
    kids = [cell("a", range(80)), cell("b", range(80, 92)), cell("c", range(92, 96)), cell("d", range(96, 100))]
    p = protect([parent, *kids], [Partition(parent.id, tuple(k.id for k in kids))], k=10)
    hidden = [k for k in kids if k.id in p.suppressed]
    assert len(hidden) >= 2 and sum(k.size for k in hidden) >= 10


def test_children_of_a_suppressed_total_do_not_all_stay_published() -> None:
    parent = cell("all", range(25))
    seen_elsewhere = cell("all+", range(30))  # parent is 5 away from a published superset
    kids = [cell("x", range(12)), cell("y", range(12, 25))]
    p = protect([parent, seen_elsewhere, *kids], [Partition(parent.id, (kids[0].id, kids[1].id))], k=10)
    assert p.suppressed[parent.id] == DIFFERENCING
    assert any(k.id in p.suppressed for k in kids)


def test_cells_with_the_same_persons_share_their_fate() -> None:
    parent = cell("all", range(40))
    kids = [cell("x", range(35)), cell("y", range(35, 40))]
    twin = Cell("other", ("x",), frozenset(range(35)))
    p = protect([parent, *kids, twin], [Partition(parent.id, (kids[0].id, kids[1].id))], k=10)
    assert p.suppressed[kids[0].id] in (COMPLEMENTARY, DIFFERENCING)
    assert p.suppressed[twin.id] in (SAME_PERSONS, DIFFERENCING)


def test_counts_report_every_reason() -> None:
    p = protect([cell("a", range(10)), cell("b", range(3))], [], k=10)
    assert p.counts("t") == {"cells": 2, "published": 1, "suppressed": 1, THRESHOLD: 1, DIFFERENCING: 0,
                             COMPLEMENTARY: 0, SAME_PERSONS: 0}




@st.composite
def releases(draw: st.DrawFn) -> tuple[list[Cell], list[Partition], int]:
    k = draw(st.sampled_from([3, 5, 10]))
    universe = draw(st.integers(min_value=k, max_value=60))
    persons = st.frozensets(st.integers(0, universe - 1), min_size=1, max_size=universe)
    cells = [Cell("free", (i,), draw(persons)) for i in range(draw(st.integers(0, 12)))]
    partitions = []
    for j in range(draw(st.integers(0, 4))):
        parent = cells[draw(st.integers(0, len(cells) - 1))] if cells and draw(st.booleans()) else None
        members = sorted(parent.persons) if parent else sorted(draw(persons))
        labels = draw(st.lists(st.integers(0, 5), min_size=len(members), max_size=len(members)))
        groups: dict[int, set[int]] = {}
        for person, label in zip(members, labels, strict=True):
            groups.setdefault(label, set()).add(person)
        if parent is None:
            parent = Cell("parent", (j,), frozenset(members))
            cells.append(parent)
        children = [Cell("part", (j, label), frozenset(g)) for label, g in sorted(groups.items())]
        cells += children
        partitions.append(Partition(parent.id, tuple(c.id for c in children)))
    unique = {c.id: c for c in cells}
    return list(unique.values()), partitions, k


@settings(max_examples=400, deadline=None)
@given(releases())
def test_no_published_cell_and_no_difference_of_two_is_below_k(
        release: tuple[list[Cell], list[Partition], int]) -> None:
    cells, partitions, k = release
    check_release(protect(cells, partitions, k), partitions)
