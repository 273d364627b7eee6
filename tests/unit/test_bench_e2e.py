"""Pure parts of ``techne bench e2e``: latency quantiles from histogram deltas, CPU accounting."""

import os
import time

from bench.e2e import _cpu_seconds, _quantile


def test_quantile_is_the_first_bucket_bound_holding_the_share_of_new_samples() -> None:
    before = {0.1: 5.0, 0.5: 10.0, 2.0: 10.0, float("inf"): 10.0}  # samples before the phase: ignored
    after = {0.1: 15.0, 0.5: 100.0, 2.0: 109.0, float("inf"): 110.0}  # 100 new: 10 <= 0.1 s, 90 <= 0.5 s
    assert _quantile(before, after, 0.5) == 0.5
    assert _quantile(before, after, 0.99) == 2.0
    assert _quantile(before, after, 0.1) == 0.1
    assert _quantile(after, after, 0.5) is None  # nothing new: no figure rather than a wrong one


def test_cpu_seconds_counts_this_process_and_skips_gone_ones() -> None:
    start = _cpu_seconds({"me": os.getpid(), "gone": 2**22 + 1})
    assert set(start) == {"me"}
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert _cpu_seconds({"me": os.getpid()})["me"] - start["me"] >= 0.1
