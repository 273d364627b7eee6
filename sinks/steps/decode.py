"""Decode step: one poll's messages of one partition -> items, invalid ones handed over.

:class:`DecodeStep` decodes in bulk when the handler can (``decode_many``); if any value is
invalid it decodes one by one. An invalid message becomes a ``None`` item (its offset is still
committed with its batch), is counted in ``techne_sink_undecodable_total`` and handed to
``on_invalid`` (dead letter). With a ``guard``, a flood of invalid messages raises
:class:`~core.errors.PoisonFlood` *before* the message that crosses the threshold is handed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from core.dlq import InvalidRateGuard
from core.errors import InvalidMessage
from sinks import metrics
from sinks.records import InvalidHandler, MessageRef


class Message(Protocol):
    offset: int
    value: bytes | None
    key: bytes | None


class Decoder(Protocol):
    table: str

    def decode(self, value: bytes | None) -> Any: ...


class DecodeStep:
    """``await step(handler, topic, partition, messages) -> items`` (``None`` for an invalid message)."""

    def __init__(self, owner: str, on_invalid: InvalidHandler, guard: InvalidRateGuard | None = None) -> None:
        self.owner, self.on_invalid, self.guard = owner, on_invalid, guard

    async def __call__(self, handler: Decoder, topic: str, partition: int, messages: Sequence[Message]) -> list[Any]:
        decode_many = getattr(handler, "decode_many", None)
        try:  # the usual case, in bulk: every message decodes
            items = decode_many([m.value for m in messages]) if decode_many else [handler.decode(m.value)
                                                                                 for m in messages]
        except InvalidMessage:
            return [await self._one(handler, topic, partition, m) for m in messages]
        if self.guard is not None:
            self.guard.record_valid(len(messages))
        return list(items)

    async def _one(self, handler: Decoder, topic: str, partition: int, message: Message) -> Any:
        try:
            item = handler.decode(message.value)
        except InvalidMessage as exc:
            if self.guard is not None:
                self.guard.record(True)  # may stop the sink here, before this letter
            await self.invalid(handler.table, exc, MessageRef(topic, partition, message.offset, message.value,
                                                              message.key))
            return None
        if self.guard is not None:
            self.guard.record(False)
        return item

    async def invalid(self, table: str, exc: InvalidMessage, ref: MessageRef) -> None:
        """Count and hand over one invalid message (also used for rows a write refused)."""
        metrics.UNDECODABLE.labels(self.owner, table).inc()
        await self.on_invalid(exc, ref)
