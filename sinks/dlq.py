"""Dead letters of the sinks: what a sink cannot store goes to ``dlq.sink``, with its reason.

:class:`DeadLetters` is the sinks' :data:`~sinks.records.InvalidHandler`. For each message a
handler refused (undecodable, or refused by the engine at insert time) it logs where and why
(never the payload), counts it (``techne_sink_undecodable_total`` by the loop,
``techne_dlq_total{stage="sink"}`` here) and produces to ``dlq.sink``:

- value: the message's original bytes (``None`` for a tombstone); key: its original key;
- headers, the shared contract (:func:`core.dlq.letter_headers`): ``techne-stage`` (``sink``),
  ``techne-reason`` (the :class:`~core.errors.InvalidMessage` reason), ``techne-detail``
  (``<step>: <detail>``, no personal data), ``techne-source-topic``, ``techne-failed-at`` (UTC,
  ISO 8601); plus ``techne-source-partition`` and ``techne-source-offset``.

The produce is idempotent with ``acks=all`` and awaited: the loop calls the handler before it
commits past the message, so a letter is on the broker before its offset is committed. A
produce that keeps failing (``DELIVERY_ATTEMPTS`` times, with backoff) raises and stops the sink with the offset
uncommitted: the message comes again after a restart. Hence at least once: a crash between the
produce and the commit leaves a second letter for the same message (same source topic,
partition and offset in the headers). ``techne dlq show --stage sink`` lists them, ``techne dlq
replay --stage sink`` re-injects them into their partner topic after a fix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiokafka.errors import KafkaError

from core import metrics
from core.dlq import letter_headers
from core.errors import InvalidMessage
from core.topics import dlq_topic
from sinks.base import Backoff
from sinks.records import MessageRef

log = logging.getLogger(__name__)
STAGE = "sink"
TOPIC = dlq_topic(STAGE)
DELIVERY_ATTEMPTS = 5

Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[object]]
"""``send(topic, value, key, headers)``, resolved once the broker acknowledged the record."""


def headers(exc: InvalidMessage, ref: MessageRef, failed_at: datetime | None = None) -> list[tuple[str, bytes]]:
    """The dead-letter headers of ``ref`` refused with ``exc`` (see module doc)."""
    return letter_headers(STAGE, exc.reason, f"{exc.stage}: {exc.detail}", ref.topic, failed_at=failed_at,
                          partition=ref.partition, offset=ref.offset)


class DeadLetters:
    """``on_invalid`` of a sink loop: log, count and produce to ``dlq.sink`` (see module doc)."""

    def __init__(self, send: Send, owner: str, *, topic: str = TOPIC, attempts: int = DELIVERY_ATTEMPTS,
                 backoff: Callable[[], Backoff] = Backoff) -> None:
        self._send, self.owner, self.topic = send, owner, topic
        self._attempts, self._backoff = attempts, backoff

    async def __call__(self, exc: InvalidMessage, ref: MessageRef) -> None:
        log.warning("%s: dead-lettering invalid message %s[%d]@%d to %s: %s",
                    self.owner, ref.topic, ref.partition, ref.offset, self.topic, exc)
        letter = headers(exc, ref)
        backoff = self._backoff()
        for attempt in range(1, self._attempts + 1):
            try:
                await self._send(self.topic, ref.value, ref.key, letter)
                break
            except KafkaError as exc_kafka:
                if attempt == self._attempts:
                    log.error("%s: %s unavailable (%s); stopping with %s[%d]@%d uncommitted",
                              self.owner, self.topic, exc_kafka, ref.topic, ref.partition, ref.offset)
                    raise
                delay = backoff.next()
                log.warning("%s: producing to %s failed (%s); retrying in %.1fs", self.owner, self.topic,
                            exc_kafka, delay)
                await asyncio.sleep(delay)
        metrics.DEAD_LETTERS.labels(stage=STAGE, reason=exc.reason).inc()
