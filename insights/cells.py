"""The cells of every insight, built from the person-level views (pure).

A :class:`Cell` is one number that could be published: the count of distinct persons in a set
(plus, for lead times, quantiles over those persons). It keeps that set (persons as small
integers) so that :mod:`insights.protect` can check every pair of cells of a release, whatever
insight they come from. A :class:`Partition` says that a cell's persons are split exactly, each
person in one child, among other cells (so publishing the parent and all children but one would
reveal the missing one).

Definitions (``s`` a season, ``v`` a venue or ``*`` for all venues of the partner):

* ``overlap (s, a, b)``: persons with an order at ``a`` and one at ``b`` in ``s`` (``a == b``: at ``a``);
* ``loyalty (s, v, spectators)``; ``first_time`` / ``returning``: with / without an order at ``v``
  in an earlier season (not computed for the earliest season of the store, whose history is
  unknown); ``freq_1``, ``freq_2``, ``freq_3-5``, ``freq_6+``: by number of distinct performances
  at ``v`` in ``s``; ``lapsed``: at ``v`` in ``s - 1`` and not in ``s``;
* ``geography (s, v, d)``: persons whose latest known département in ``s`` (at ``v``) is ``d``
  (:data:`~insights.views.UNKNOWN` if never shared): a partition of the spectators;
* ``crossover (s, d1, d2)``: persons who attended discipline ``d1`` and ``d2`` in ``s``;
* ``lead_time (d, t)`` (``t`` a tariff or ``*``): persons with an order of discipline ``d`` at
  tariff ``t``; quantiles of their lead times, *one value per person* (the person's lower median),
  so that one frequent buyer cannot set a cell's figure;
* ``conversion (v, c, clicked | converted)``: persons who clicked campaign ``c`` of ``v``, and
  those of them who ordered at ``v`` within :data:`~insights.views.CONVERSION_DAYS` days;
* ``attendance (v, p, holders | attended | no_show)`` (``p`` a performance or ``*`` for all of
  ``v``'s): persons holding a ticket that still counts (not refunded or cancelled) for ``p``,
  those of them scanned in (``admitted``), and the others: a partition of the holders;
* ``campaign_funnel (v, c, sent | delivered | opened | clicked | ordered)``: persons who reached that step
  of campaign ``c`` of ``v`` and every earlier one (ordered: at ``v`` within
  :data:`~insights.views.CONVERSION_DAYS` days of a click), so each step is a subset of the
  previous one and a published step never differs from the next by fewer than k persons;
* ``acquisition (v, m, ch)`` (``ch`` a channel or ``*``): first-time buyers at ``v`` whose first
  order there (the first known to the store that still counts) is in month ``m`` (Europe/Paris),
  attributed to channel ``ch`` by :data:`~insights.views.ATTRIBUTION` (first touch), ``*`` all of
  them: a partition of ``(v, m, *)`` by channel, ``untracked`` included. The month's ad spend
  per channel (describes no one) is read apart and never protected; the cost per new spectator
  is shown only next to a published count;
* ``web_before_purchase (v, kind, item)`` (``kind`` ``page`` or ``content``; ``(v, *, *)``):
  first-time buyers at ``v`` who, under a consent, saw that page / content at ``v`` in the
  :data:`~insights.views.BEFORE_DAYS` days up to their first order (``*``: who saw anything).
  Not a partition (one person sees several pages): every page cell is a subset of ``(v, *, *)``,
  which the differencing rule checks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from insights.views import FREQUENCY_BUCKETS, FUNNEL_STEPS, UNKNOWN

Key = tuple[str | int, ...]
CellId = tuple[str, Key]
INSIGHTS = ("overlap", "loyalty", "geography", "crossover", "lead_time", "conversion", "attendance",
            "campaign_funnel", "acquisition", "web_before_purchase")
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "overlap": ("season", "venue_a", "venue_b"),
    "loyalty": ("season", "venue", "measure"),
    "geography": ("season", "venue", "departement"),
    "crossover": ("season", "discipline_a", "discipline_b"),
    "lead_time": ("discipline", "tariff"),
    "conversion": ("venue", "campaign", "measure"),
    "attendance": ("venue", "performance", "measure"),
    "campaign_funnel": ("venue", "campaign", "measure"),
    "acquisition": ("venue", "month", "channel"),
    "web_before_purchase": ("venue", "kind", "item"),
}
ALL = "*"
FREQUENCY = tuple(f"freq_{label}" for label, _, _ in FREQUENCY_BUCKETS)


@dataclass(frozen=True)
class Cell:
    insight: str
    key: Key
    persons: frozenset[int]
    measures: tuple[tuple[str, int], ...] = ()

    @property
    def id(self) -> CellId:
        return (self.insight, self.key)

    @property
    def size(self) -> int:
        return len(self.persons)

    def keys(self) -> dict[str, str | int]:
        return dict(zip(KEY_FIELDS[self.insight], self.key, strict=True))


@dataclass(frozen=True)
class Partition:
    parent: CellId
    children: tuple[CellId, ...]


@dataclass
class Persons:
    """Interns pseudonyms as small integers (sets of ints are smaller and faster)."""

    ids: dict[str, int] = field(default_factory=dict)

    def __call__(self, pseudonym: Any) -> int:
        return self.ids.setdefault(str(pseudonym), len(self.ids))


def low_quantile(values: Sequence[int], level: float) -> int:
    """ClickHouse's ``quantileExactLow(level)``: a member of ``values``, never an interpolation."""
    ordered = sorted(values)
    n = len(ordered)
    index = math.ceil(n * 0.5) - 1 if level == 0.5 else min(int(level * n), n - 1)
    return ordered[max(index, 0)]


def _cells(insight: str, sets: dict[Key, set[int]]) -> list[Cell]:
    return [Cell(insight, key, frozenset(persons)) for key, persons in sorted(sets.items(), key=lambda i: str(i[0]))
            if persons]


def _pairs(insight: str, members: dict[tuple[int, str], set[int]]) -> list[Cell]:
    """Pairwise intersections per season (``a <= b``; ``a == b`` is the group itself)."""
    sets: dict[Key, set[int]] = {}
    for (season, a), pa in members.items():
        for (season_b, b), pb in members.items():
            if season_b == season and a <= b:
                sets[(season, a, b)] = pa & pb
    return _cells(insight, sets)


def visits_cells(rows: Iterable[Sequence[Any]], person: Persons) -> tuple[list[Cell], list[Partition]]:
    """Overlap, loyalty and geography from ``insights_visits`` rows
    ``(season, venue, person, performances, departement, dept_at)``."""
    at: dict[tuple[int, str], set[int]] = defaultdict(set)
    performances: dict[tuple[int, str, int], int] = defaultdict(int)
    dept: dict[tuple[int, str, int], tuple[str, str]] = {}
    for season, venue, pseudonym, count, departement, dept_at in rows:
        p, s = person(pseudonym), int(season)
        for v in (str(venue), ALL):
            at[(s, v)].add(p)
            performances[(s, v, p)] += int(count)
            if departement is not None:
                candidate = (str(dept_at), str(departement))
                if v != ALL or candidate > dept.get((s, v, p), ("", "")):
                    dept[(s, v, p)] = candidate
    cells = _pairs("overlap", {k: v for k, v in at.items() if k[1] != ALL})
    partitions: list[Partition] = []
    seasons = sorted({s for s, _ in at})
    loyalty: dict[Key, set[int]] = {}
    geography: dict[Key, set[int]] = defaultdict(set)
    first: dict[tuple[str, int], int] = {}
    for s, v in sorted(at):
        for p in at[(s, v)]:
            first.setdefault((v, p), s)
    for (s, v), persons in sorted(at.items()):
        spectators = ("loyalty", (s, v, "spectators"))
        loyalty[(s, v, "spectators")] = persons
        if s > seasons[0]:
            loyalty[(s, v, "first_time")] = {p for p in persons if first[(v, p)] == s}
            loyalty[(s, v, "returning")] = {p for p in persons if first[(v, p)] < s}
            partitions.append(Partition(spectators, (("loyalty", (s, v, "first_time")),
                                                     ("loyalty", (s, v, "returning")))))
        for (_, lo, hi), name in zip(FREQUENCY_BUCKETS, FREQUENCY, strict=True):
            loyalty[(s, v, name)] = {p for p in persons if lo <= performances[(s, v, p)] <= (hi or math.inf)}
        partitions.append(Partition(spectators, tuple(("loyalty", (s, v, name)) for name in FREQUENCY)))
        if (s - 1, v) in at:
            loyalty[(s, v, "lapsed")] = at[(s - 1, v)] - persons
        for p in persons:
            geography[(s, v, dept[(s, v, p)][1] if (s, v, p) in dept else UNKNOWN)].add(p)
        children = tuple(("geography", key) for key in sorted(geography, key=str) if key[:2] == (s, v))
        partitions.append(Partition(spectators, children))
    cells += _cells("loyalty", loyalty) + _cells("geography", dict(geography))
    return cells, partitions


def discipline_cells(rows: Iterable[Sequence[Any]], person: Persons) -> list[Cell]:
    """Crossover from ``insights_disciplines`` rows ``(season, discipline, person)``."""
    members: dict[tuple[int, str], set[int]] = defaultdict(set)
    for season, discipline, pseudonym in rows:
        members[(int(season), str(discipline))].add(person(pseudonym))
    return _pairs("crossover", members)


def lead_cells(rows: Iterable[Sequence[Any]], person: Persons) -> list[Cell]:
    """Lead times from ``insights_lead`` rows ``(discipline, tariff, person, lead_days)``."""
    days: dict[Key, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for discipline, tariff, pseudonym, lead in rows:
        p = person(pseudonym)
        for t in (str(tariff), ALL):
            days[(str(discipline), t)][p].append(int(lead))
    cells = []
    for key in sorted(days):
        per_person = [low_quantile(v, 0.5) for v in days[key].values()]
        # no order count: orders split exactly by tariff, so the "any tariff" count minus the
        # published tariffs would give the orders of a suppressed (small) group away
        measures = (("p25_days", low_quantile(per_person, 0.25)), ("median_days", low_quantile(per_person, 0.5)),
                    ("p75_days", low_quantile(per_person, 0.75)))
        cells.append(Cell("lead_time", key, frozenset(days[key]), measures))
    return cells


def attendance_cells(rows: Iterable[Sequence[Any]], person: Persons) -> tuple[list[Cell], list[Partition]]:
    """No-shows from ``insights_attendance`` rows ``(venue, performance, person, attended)``: per
    performance and per venue (``*``, persons who missed at least one of its performances count
    as no-shows there, those who attended all as attended)."""
    sets: dict[Key, set[int]] = defaultdict(set)
    missed: dict[str, set[int]] = defaultdict(set)
    for venue, performance, pseudonym, attended in rows:
        p, v = person(pseudonym), str(venue)
        for key in ((v, str(performance)), (v, ALL)):
            sets[(*key, "holders")].add(p)
        sets[(v, str(performance), "attended" if int(attended) else "no_show")].add(p)
        if not int(attended):
            missed[v].add(p)
    for cell_key, persons in list(sets.items()):
        if cell_key[1] == ALL and cell_key[2] == "holders":
            sets[(cell_key[0], ALL, "no_show")] = set(missed[str(cell_key[0])])
            sets[(cell_key[0], ALL, "attended")] = persons - missed[str(cell_key[0])]
    cells = _cells("attendance", dict(sets))
    ids = {c.id for c in cells}
    partitions = [Partition(("attendance", (*key[:2], "holders")),
                            tuple(("attendance", (*key[:2], m)) for m in ("attended", "no_show")
                                  if ("attendance", (*key[:2], m)) in ids))
                  for key in sets if key[2] == "holders"]
    return cells, partitions


def funnel_cells(rows: Iterable[Sequence[Any]], person: Persons) -> list[Cell]:
    """The campaign funnel from ``insights_funnel`` rows ``(venue, campaign, person, sent,
    delivered, opened, clicked, ordered)`` (see module doc: cumulative steps)."""
    sets: dict[Key, set[int]] = defaultdict(set)
    for venue, campaign, pseudonym, *steps in rows:
        p = person(pseudonym)
        for name, reached in zip(FUNNEL_STEPS, steps, strict=True):
            if not int(reached):
                break
            sets[(str(venue), str(campaign), name)].add(p)
    return _cells("campaign_funnel", dict(sets))


def click_cells(rows: Iterable[Sequence[Any]], person: Persons) -> list[Cell]:
    """Conversion from ``insights_clicks`` rows ``(venue, campaign, person, converted)``."""
    sets: dict[Key, set[int]] = defaultdict(set)
    for venue, campaign, pseudonym, converted in rows:
        p = person(pseudonym)
        sets[(str(venue), str(campaign), "clicked")].add(p)
        if int(converted):
            sets[(str(venue), str(campaign), "converted")].add(p)
    return _cells("conversion", dict(sets))


def acquisition_cells(rows: Iterable[Sequence[Any]], person: Persons) -> tuple[list[Cell], list[Partition]]:
    """New spectators by channel from ``insights_acquisition`` rows ``(venue, month, person,
    channel)`` (one per first-time buyer): ``(v, m, channel)`` and ``(v, m, *)``, partitioned."""
    sets: dict[Key, set[int]] = defaultdict(set)
    for venue, month, pseudonym, channel in rows:
        p = person(pseudonym)
        sets[(str(venue), str(month), str(channel))].add(p)
        sets[(str(venue), str(month), ALL)].add(p)
    cells = _cells("acquisition", dict(sets))
    partitions = [Partition(("acquisition", key), tuple(("acquisition", k) for k in sorted(sets)
                                                        if k[:2] == key[:2] and k[2] != ALL))
                  for key in sorted(sets) if key[2] == ALL]
    return cells, partitions


def browsing_cells(rows: Iterable[Sequence[Any]], person: Persons) -> list[Cell]:
    """Web and content before a first order from ``insights_browsing`` rows ``(venue, person,
    kind, item)``: ``(v, kind, item)`` and ``(v, *, *)``."""
    sets: dict[Key, set[int]] = defaultdict(set)
    for venue, pseudonym, kind, item in rows:
        p = person(pseudonym)
        sets[(str(venue), str(kind), str(item))].add(p)
        sets[(str(venue), ALL, ALL)].add(p)
    return _cells("web_before_purchase", dict(sets))
