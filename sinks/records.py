"""Partner-topic message -> full row (reference decoder), and the hook for invalid messages.

:func:`decode_row` is pure: framed Avro bytes of a ``SharedTicketOrder`` -> every field as a
JSON-ready row, or :class:`~core.errors.InvalidMessage` (tombstone, undecodable, another
schema, unstorable value). The sink's hot path does not use it (the engine decodes the Avro
body, see :mod:`sinks.framing`); it singles out records the engine refuses, and is the
reference the fast path is tested against. Sinks hand each invalid message to an
:data:`InvalidHandler` before skipping it: the partner and audit sinks use
:class:`sinks.dlq.DeadLetters` (``dlq.sink``); :func:`log_invalid` only logs where and why,
never the payload. The handler is awaited before the batch holding the message is committed,
so a dead-letter write that raises stops the sink instead of losing the message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.errors import InvalidMessage
from schemas.codec import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from sinks.ddl import Row, row_from_record

log = logging.getLogger(__name__)


def decode_row(value: bytes | None) -> Row:
    """Pure: a partner-topic message value -> table row. Raises :class:`InvalidMessage`."""
    if value is None:
        raise InvalidMessage("decode", "tombstone", "message has no value")
    name, record = CATALOGUE.decode(value)
    if name != SHARED_TICKET_ORDER:
        raise InvalidMessage("decode", "unexpected_schema", name)
    return row_from_record(record)


@dataclass(frozen=True)
class MessageRef:
    """Where an invalid message came from; ``value`` is for a DLQ and must never be logged."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


InvalidHandler = Callable[[InvalidMessage, MessageRef], Awaitable[None]]


async def log_invalid(exc: InvalidMessage, ref: MessageRef) -> None:
    """Default ``on_invalid``: log where and why (stage/reason/detail), not the payload."""
    log.warning("skipping invalid message %s[%d]@%d: %s", ref.topic, ref.partition, ref.offset, exc)
