import tracemalloc
import uuid

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streams.partitioner import CachedPartitioner


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=50), st.integers(1, 64))
def test_same_partitions_as_kafkas_default_partitioner(keys: list[bytes], n: int) -> None:
    cached, default = CachedPartitioner(cache_size=8), DefaultPartitioner()
    parts = list(range(n))
    for key in keys + keys:  # second pass from the cache (or after evictions)
        assert cached(key, parts, parts) == default(key, parts, parts)


def test_unkeyed_records_spread_over_available_partitions() -> None:
    chosen = {CachedPartitioner()(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert chosen == {1, 3}


def test_memory_stays_bounded_under_keys_never_seen_twice() -> None:
    """Audit records are keyed by event id: every event brings a new key. The cache must stop
    growing at its bound (about 1 MiB), not grow for a quarter of an hour of traffic."""
    partitioner, parts = CachedPartitioner(), list(range(12))
    keys = [str(uuid.uuid4()).encode() for _ in range(60_000)]
    tracemalloc.start()
    try:
        for key in keys[:20_000]:
            partitioner(key, parts, parts)
        filled, _ = tracemalloc.get_traced_memory()
        for key in keys[20_000:]:
            partitioner(key, parts, parts)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert filled < 2 * 2**20
    assert after - filled < 64 * 1024  # 40,000 more new keys: nothing more kept
