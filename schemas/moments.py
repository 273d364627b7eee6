"""The dates and times an event may carry: what every store holds, 1900-01-01 .. 2299-12-31 UTC
(ClickHouse ``DateTime64`` and ``Date32``; outside, it saturates, so the sinks dead-letter such a
row). :func:`out_of_range` checks a validated incoming event before it is converted to UTC, so an
offset that would carry a moment past Python's own range (``0001-01-01T00:30:00+01:00``) is a
refused field too, not an ``OverflowError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel

FIRST = datetime(1900, 1, 1, tzinfo=UTC)
LAST = datetime(2299, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
MESSAGE = "outside 1900-01-01 .. 2299-12-31 (UTC), the dates the bus's stores hold"


def _fits(value: date) -> bool:
    if not isinstance(value, datetime):
        return FIRST.date() <= value <= LAST.date()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return FIRST <= value.astimezone(UTC) <= LAST
    except OverflowError:  # the offset moves it before year 1 or after year 9999
        return False


def _moments(value: Any, path: str) -> Iterator[tuple[str, date]]:
    if isinstance(value, date):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _moments(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _moments(item, f"{path}.{i}")


def out_of_range(event: BaseModel) -> list[dict[str, str]]:
    """``[{field, message}]`` of every date or time of ``event`` the stores cannot hold."""
    return [{"field": path, "message": MESSAGE} for path, value in _moments(event, "") if not _fits(value)]
