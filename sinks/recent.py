"""Exact "already stored?" answers without a store query, for recent events (pure).

The duplicate check before an insert must be exact, and asking the store costs one query per
write over the freshest (least merged) parts. :class:`RecentIds` answers it from memory for
most rows, exactly, under the sink's single-writer guarantee:

* ``reset(watermark)``: the store's greatest ``occurred_at`` when this process (re)starts, or
  after a write whose outcome is unknown. Every stored row above the watermark was then
  inserted by this process afterwards, and is remembered here;
* ``floor`` starts at the watermark; rows with ``occurred_at > floor`` are answered from memory
  (:meth:`known`), the others must be checked against the store (``None``);
* ids are kept per event-time minute; above ``max_ids``, the oldest minutes are forgotten and
  the floor rises past them, so memory stays bounded and answers stay exact.

Every copy of an event carries the same ``occurred_at``, so a duplicate of a remembered row is
always found in the same minute.
"""

from __future__ import annotations

from collections.abc import Iterable

MINUTE_US = 60_000_000
MAX_IDS = 300_000


class RecentIds:
    """Event ids inserted by this process above a floor (see module doc)."""

    def __init__(self, max_ids: int = MAX_IDS) -> None:
        self.max_ids = max_ids
        self.floor: int | None = None
        self._minutes: dict[int, set[str]] = {}
        self._size = 0

    def reset(self, watermark_us: int) -> None:
        self.floor = watermark_us
        self._minutes.clear()
        self._size = 0

    def invalidate(self) -> None:
        """Forget everything: the next write must call :meth:`reset` with a fresh watermark."""
        self.floor = None
        self._minutes.clear()
        self._size = 0

    def known(self, event_id: str, occurred_at_us: int) -> bool | None:
        """Whether the event is stored, or ``None`` when only the store can tell."""
        if self.floor is None or occurred_at_us <= self.floor:
            return None
        ids = self._minutes.get(occurred_at_us // MINUTE_US)
        return ids is not None and event_id in ids

    def lookup(self, rows: Iterable[tuple[str, int]]) -> list[bool | None]:
        """:meth:`known` of each ``(event_id, occurred_at_us)``, in one call."""
        floor, minutes = self.floor, self._minutes
        if floor is None:
            return [None for _ in rows]
        return [None if at <= floor else (ids := minutes.get(at // MINUTE_US)) is not None and event_id in ids
                for event_id, at in rows]

    def add(self, rows: Iterable[tuple[str, int]]) -> None:
        """Remember ``(event_id, occurred_at_us)`` of rows just inserted above the floor."""
        if self.floor is None:
            return
        floor, minutes = self.floor, self._minutes
        touched: dict[int, int] = {}  # minute -> its size before this call
        minute, ids = None, set[str]()
        for event_id, at in rows:
            if at > floor:
                if at // MINUTE_US != minute:  # rows mostly come in event-time order: few lookups
                    minute = at // MINUTE_US
                    ids = minutes.setdefault(minute, set())
                    touched.setdefault(minute, len(ids))
                ids.add(event_id)
        self._size += sum(len(minutes[m]) - before for m, before in touched.items())
        while self._size > self.max_ids and self._minutes:
            oldest = min(self._minutes)
            self._size -= len(self._minutes.pop(oldest))
            self.floor = max(self.floor, (oldest + 1) * MINUTE_US - 1)

    def __len__(self) -> int:
        return self._size
