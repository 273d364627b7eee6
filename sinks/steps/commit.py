"""Commit step: offsets are committed only after the batches holding them were written.

:class:`Commit` commits ``max_offset + 1`` per written partition, bounded in time (after a
broker restart aiokafka's commit can wait for a coordinator forever). A failed commit is
reported (``False``), never raised: the rows are durable and a redelivery of these batches is
recognised as duplicates by the writer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)
COMMIT_TIMEOUT_S = 15.0


class Commit:
    """``await commit(offsets) -> committed?`` on one consumer."""

    def __init__(self, owner: str, consumer: Any, timeout_s: float = COMMIT_TIMEOUT_S) -> None:
        self.owner, self.consumer, self.timeout_s = owner, consumer, timeout_s

    async def __call__(self, offsets: dict[TopicPartition, int]) -> bool:
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), self.timeout_s)
        except (KafkaError, TimeoutError) as exc:
            log.warning("%s: commit of %s failed (%s); the batches will be redelivered and deduplicated",
                        self.owner, offsets, exc)
            return False
        return True
