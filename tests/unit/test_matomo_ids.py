"""Matomo event ids: distinct hits get distinct ids, a re-sent hit keeps its id (property tests).

The hits here carry neither ``r`` nor ``pv_id`` (what the official Node tracker sends): only the
parameters of the hit and its place among identical requests of one bulk tell hits apart."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.ingest import derived_event_id
from producers.matomo import event_time, hit_key, to_events

PARAM = st.sampled_from(["url", "action_name", "urlref", "h", "m", "s", "cdt", "_idts", "idgoal", "e_c", "e_a",
                         "e_n", "e_v", "search", "lang", "uid", "_id"])
VALUE = st.text(alphabet="abcdefghij0123456789:/.-", min_size=0, max_size=12)
HIT = st.dictionaries(PARAM, VALUE, min_size=1, max_size=6).map(
    lambda d: {"idsite": "site", "rec": "1", **d})


def ids(requests: list[dict[str, str]]) -> list[str]:
    return [str(derived_event_id("venue", "matomo", key)) for _, _, key in to_events(requests)]


@settings(max_examples=200, deadline=None)
@given(st.lists(HIT, min_size=1, max_size=30, unique_by=lambda d: tuple(sorted(d.items()))))
def test_distinct_hits_get_distinct_ids(hits: list[dict[str, str]]) -> None:
    got = ids(hits)
    assert len(got) == len(hits) and len(set(got)) == len(hits)


@settings(max_examples=200, deadline=None)
@given(st.lists(HIT, min_size=1, max_size=20))
def test_a_resent_delivery_keeps_its_ids(hits: list[dict[str, str]]) -> None:
    first = ids(hits)
    again = ids([dict(reversed(list(h.items()))) for h in hits])  # same hits, parameters in another order
    assert first == again
    assert len(set(first)) == len(first)  # identical entries of one bulk are still distinct hits


@given(HIT)
def test_token_auth_is_not_part_of_the_id(hit: dict[str, str]) -> None:
    assert hit_key(hit) == hit_key({**hit, "token_auth": "0123456789abcdef"})


def test_cdt_is_the_event_time() -> None:
    assert event_time({"cdt": "1767225600"}) == "2026-01-01T00:00:00+00:00"
    assert event_time({"cdt": "2026-01-01 10:00:00"}) == "2026-01-01T10:00:00+00:00"
    assert event_time({"cdt": "yesterday"}) > "2026"  # unreadable: time of receipt


def test_a_cdt_in_the_future_is_not_believed() -> None:
    """The tracking door is public: a hit dated ahead would outlive the 25-month measurement limit."""
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert event_time({"cdt": "2026-12-07 12:09:00"}, now) == "2026-12-07T12:09:00+00:00"  # clock skew
    for ahead in ("2026-12-07 12:11:00", "9999-12-31 23:59:59", str(int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()))):
        assert event_time({"cdt": ahead}, now) == now.isoformat()
    assert event_time({"cdt": "2026-01-01 10:00:00"}, now) == "2026-01-01T10:00:00+00:00"  # the past: as sent
