"""The dead-letter contract every stage shares, and the guard against poison floods.

A dead letter on ``dlq.<stage>`` (:func:`core.topics.dlq_topic`) holds the original message
bytes as its value, its original key, and in headers (:func:`letter_headers`):
``techne-stage``, ``techne-reason`` (the :class:`~core.errors.InvalidMessage` reason code),
``techne-detail`` (no personal data, at most 500 characters), ``techne-source-topic``,
``techne-failed-at`` (UTC, ISO 8601) and, when known, ``techne-source-partition`` and
``techne-source-offset``. The worker (``streams.processor.dead_letter``) and the sinks
(``sinks.dlq``) write them; ``streams.dlq`` reads them (``techne dlq show / replay``).

:class:`InvalidRateGuard` stops a consumer whose recent input is mostly invalid
(:class:`PoisonFlood`) instead of emptying a topic into its dead-letter topic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.errors import PoisonFlood as PoisonFlood  # defined with the whole tree

STAGE, REASON, DETAIL = "techne-stage", "techne-reason", "techne-detail"
SOURCE_TOPIC, FAILED_AT = "techne-source-topic", "techne-failed-at"
SOURCE_PARTITION, SOURCE_OFFSET = "techne-source-partition", "techne-source-offset"
REPLAYED_FROM = "techne-replayed-from"
DETAIL_MAX_CHARS = 500


def letter_headers(stage: str, reason: str, detail: str, source_topic: str, *, failed_at: datetime | None = None,
                   partition: int | None = None, offset: int | None = None) -> list[tuple[str, bytes]]:
    """The headers of a dead letter (see the module doc)."""
    headers = [(STAGE, stage.encode()), (REASON, reason.encode()),
               (DETAIL, detail[:DETAIL_MAX_CHARS].encode()), (SOURCE_TOPIC, source_topic.encode()),
               (FAILED_AT, (failed_at or datetime.now(UTC)).isoformat().encode())]
    if partition is not None and offset is not None:
        headers += [(SOURCE_PARTITION, str(partition).encode()), (SOURCE_OFFSET, str(offset).encode())]
    return headers



@dataclass
class InvalidRateGuard:
    """Trips when, over the last ``window`` messages, more than ``threshold`` were invalid."""

    window: int = 1000
    threshold: float = 0.5
    _recent: deque[bool] = field(default_factory=deque)
    _invalid: int = 0

    def record(self, invalid: bool) -> None:
        self._recent.append(invalid)
        self._invalid += invalid
        if len(self._recent) > self.window:
            self._invalid -= self._recent.popleft()
        if len(self._recent) == self.window and self._invalid > self.threshold * self.window:
            raise PoisonFlood(f"{self._invalid} of the last {self.window} messages were invalid "
                              f"(threshold {self.threshold:.0%}); stopping — inspect with `techne dlq show`")

    def record_valid(self, n: int) -> None:
        """``n`` valid messages at once (a poll that decoded in bulk); never trips."""
        if n >= self.window:
            self._recent, self._invalid = deque([False] * self.window), 0
            return
        for _ in range(n):
            self._recent.append(False)
            if len(self._recent) > self.window:
                self._invalid -= self._recent.popleft()
