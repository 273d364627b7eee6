"""``RecentIds.lookup`` answers as ``known`` row by row; ``add`` keeps the size exact across
minutes visited in any order, and eviction still raises the floor."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.recent import MINUTE_US, RecentIds

keys = st.lists(st.tuples(st.sampled_from([f"id-{i}" for i in range(30)]),
                          st.integers(0, 6 * MINUTE_US)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(first=keys, second=keys, probe=keys, floor=st.integers(0, 3 * MINUTE_US), max_ids=st.integers(5, 80))
def test_lookup_and_add_match_the_row_by_row_model(first: list[tuple[str, int]], second: list[tuple[str, int]],
                                                    probe: list[tuple[str, int]], floor: int, max_ids: int) -> None:
    recent = RecentIds(max_ids=max_ids)
    assert recent.lookup(probe) == [None] * len(probe)
    recent.reset(floor)
    recent.add(first)
    recent.add(second)
    distinct = {(i, at // MINUTE_US) for i, at in (*first, *second) if at > floor}
    assert len(recent) <= max(len(distinct), 0)
    assert len(recent) == sum(len(ids) for ids in recent._minutes.values())
    assert len(recent) <= max_ids or not recent._minutes
    assert recent.lookup(probe) == [recent.known(i, at) for i, at in probe]
    for event_id, at in (*first, *second):  # what was added and not evicted is known
        if recent.floor is not None and at > recent.floor:
            assert recent.known(event_id, at) is True
