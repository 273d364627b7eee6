"""Batching step: per-partition open and sealed batches, growth and explicit backpressure.

At most one sealed and one open batch per partition. A batch is sealed when it holds its
``batch_rows`` messages or its first message is ``batch_seconds`` old (or on ``force``). While
a partition's sealed batch is being written its next batch keeps filling (a slow store gets
bigger inserts) up to :data:`GROW_CAP` batch sizes; then the partition is *held*: :meth:`seal`
returns it so the caller pauses it, and :meth:`done` returns it once its batch is written.
A poll that rewinds a partition (older offsets again, after a reassignment) rebuilds its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from aiokafka import TopicPartition

from sinks.base import Batch

log = logging.getLogger(__name__)
T = TypeVar("T")
GROW_CAP = 4
"""A partition's open batch may grow to this many batch sizes while its previous batch is being
written (bigger inserts when the store is the bottleneck); beyond, the partition is paused."""
POLL_MAX_S = 0.25
WRITER_POLL_S = 0.01


class PartitionBatches(Generic[T]):
    """Open and sealed batches of every assigned partition (see module doc)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.open: dict[TopicPartition, Batch[T]] = {}
        self.sealed: dict[TopicPartition, Batch[T]] = {}
        self.held: set[TopicPartition] = set()
        self.next: dict[TopicPartition, int] = {}

    @property
    def buffered(self) -> int:
        """Messages added but not yet done (written and committed, or dropped)."""
        return sum(len(b) for b in (*self.open.values(), *self.sealed.values()))

    def __bool__(self) -> bool:
        return bool(self.open or self.sealed)

    def add(self, tp: TopicPartition, rows: int, seconds: float, offsets: Sequence[int], items: Sequence[T | None],
            keys: Sequence[bytes | None], now: float) -> None:
        """Add one poll's messages of ``tp`` (in offset order) to its open batch."""
        batch = self.open.get(tp)
        if batch is not None and offsets[0] <= batch.max_offset:
            log.info("%s: %s rewound to %d, rebuilding its batch", self.owner, tp, offsets[0])
            batch = None
        if batch is None:
            batch = self.open[tp] = Batch(tp.topic, tp.partition, rows, seconds)
        if all(item is not None for item in items):
            batch.extend(list(offsets), list(items), now, list(keys))  # type: ignore[arg-type]
        else:
            for offset, item, key in zip(offsets, items, keys, strict=True):
                batch.add(offset, item, now, key)
        self.next[tp] = offsets[-1] + 1

    def seal(self, now: float, force: bool) -> list[TopicPartition]:
        """Seal the ready batches (all with ``force``); returns the partitions to pause (newly held)."""
        to_pause = []
        for tp, batch in list(self.open.items()):
            if not (force or batch.ready(now)):
                continue
            if tp in self.sealed:  # its previous batch is being written: it grows, up to a cap
                if not force and tp not in self.held and batch.messages >= GROW_CAP * batch.max_messages:
                    self.held.add(tp)
                    to_pause.append(tp)
                continue
            self.sealed[tp] = self.open.pop(tp)
        return to_pause

    def sealed_topics(self) -> list[str]:
        return list(dict.fromkeys(tp.topic for tp in self.sealed))

    def take(self, topic: str, assigned: Iterable[TopicPartition]) -> tuple[list[TopicPartition], list[Batch[T]]]:
        """The sealed batches of ``topic`` still assigned (the others are forgotten: redelivered
        to their new owner)."""
        owned = set(assigned)
        for tp in [tp for tp in self.sealed if tp.topic == topic and tp not in owned]:
            del self.sealed[tp]
        tps = [tp for tp in self.sealed if tp.topic == topic]
        return tps, [self.sealed[tp] for tp in tps]

    def done(self, tps: Iterable[TopicPartition], retrying: bool) -> list[TopicPartition]:
        """Forget the written batches of ``tps``; returns the held partitions to resume."""
        resume = []
        for tp in tps:
            del self.sealed[tp]
            if tp in self.held and not retrying:
                self.held.discard(tp)
                resume.append(tp)
        return resume

    def drop(self, tps: Iterable[TopicPartition]) -> int:
        """Forget every batch of revoked ``tps``; returns how many messages were dropped."""
        dropped: list[Batch[Any] | None] = []
        for tp in list(tps):
            dropped += [self.open.pop(tp, None), self.sealed.pop(tp, None)]
            self.held.discard(tp)
            self.next.pop(tp, None)
        return sum(len(b) for b in dropped if b is not None)

    def first_offset(self, tp: TopicPartition) -> int | None:
        """The oldest offset of ``tp`` not yet committed, if known (for the lag gauge)."""
        firsts = [b.min_offset for b in (self.sealed.get(tp), self.open.get(tp)) if b is not None and b.messages]
        return min(firsts) if firsts else self.next.get(tp)

    def poll_timeout(self, now: float, retry_at: float | None, writing: bool) -> float:
        """Until the next batch can be sealed or retried; short while the writer works (to seal
        the next batch as soon as it is done). Never counts batches that wait for their
        partition's previous one: they cannot be sealed before the writer finishes."""
        if retry_at is not None:
            wait = retry_at - now
        else:
            sealable = (b for tp, b in self.open.items() if tp not in self.sealed)
            deadlines = [d for b in sealable if (d := b.deadline()) is not None]
            wait = min(deadlines) - now if deadlines else POLL_MAX_S
            if writing:
                wait = min(wait, WRITER_POLL_S)
        return max(0.0, min(wait, POLL_MAX_S))
