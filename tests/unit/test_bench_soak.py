"""Pure parts of ``techne bench soak``: the RSS slope and the window it is taken over."""

import pytest

from bench.soak import slope, window


def test_slope_is_mib_per_minute_of_a_straight_line() -> None:
    rising = [(t * 10.0, 100.0 + 0.5 * t) for t in range(30)]  # +0.5 MiB every 10 s = +3 MiB/min
    assert slope(rising) == pytest.approx(3.0)
    flat = [(t * 10.0, 200.0) for t in range(30)]
    assert slope(flat) == 0.0


def test_slope_of_noise_around_a_level_is_near_zero_and_degenerate_input_is_zero() -> None:
    noisy = [(t * 10.0, 150.0 + (1.0 if t % 2 else -1.0)) for t in range(60)]
    assert abs(slope(noisy)) < 0.1
    assert slope([(0.0, 5.0)]) == 0.0
    assert slope([(3.0, 5.0), (3.0, 9.0)]) == 0.0  # no time spread: no slope rather than a division by zero


def test_window_keeps_the_last_20_minutes_or_the_last_two_thirds_of_a_short_run() -> None:
    long_run = [(t * 60.0, float(t)) for t in range(31)]  # 30 min, one sample a minute
    assert window(long_run, 30)[0][0] == 600.0  # from minute 10
    short = [(t * 60.0, float(t)) for t in range(4)]  # 3 min
    assert [t for t, _ in window(short, 3)] == [60.0, 120.0, 180.0]
    assert window([], 3) == []


def test_warm_up_growth_before_the_window_does_not_count() -> None:
    samples = [(t * 60.0, 100.0 + 10 * t if t < 10 else 200.0) for t in range(31)]
    assert slope(window(samples, 30)) == pytest.approx(0.0)
    assert slope(samples) > 1.0
