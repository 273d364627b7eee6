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
