"""Kafka's default key partitioning (murmur2, as the Java client), with the key hashes cached.

aiokafka's :class:`~aiokafka.partitioner.DefaultPartitioner` hashes every key in pure Python;
profiling the worker (py-spy, ``techne bench streams``) put it at ~6 % of its time. The worker
sends the same keys over and over (a person's pseudonym per partner, on every event of that
person), so a bounded cache of hashes removes most of that work. Partitions are exactly the
default partitioner's, so records land where any Kafka client would put them.

The cache is small on purpose (:data:`CACHE_SIZE` keys, about 1 MiB): the audit records are keyed
by event id, a key never seen twice, so every event adds one entry. With 65,536 entries the
worker's memory grew for ~15 minutes at 50 events/s (tracemalloc in the 30-minute soak: the
cache's keys, links and hashes were the only traced growth) before reaching its bound; at 8,192
it is full within two minutes and flat after. A person's keys (one pseudonym per partner and one
for the venue's store) stay cached across the few events of one visit.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2

CACHE_SIZE = 1 << 13
"""Keys whose hash is kept (least recently used evicted first)."""


class CachedPartitioner:
    """Drop-in for ``DefaultPartitioner``: same partition for the same key and partition list."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._hash = lru_cache(maxsize=cache_size)(murmur2)

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        index: int = self._hash(key) & 0x7FFFFFFF
        return all_partitions[index % len(all_partitions)]
