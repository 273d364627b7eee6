"""``sinks.metrics.observe_many`` records exactly what ``observe`` of each amount records."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from sinks.metrics import observe_many

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
AMOUNTS = [0.0, 0.05, 0.0500001, 0.1, 0.3, 1.0, 7.5, 299.9, 300.0, 300.1, 1e9, 0.049]


def samples(fill: str) -> list[tuple[str, dict[str, str], float]]:
    registry = CollectorRegistry()
    histogram = Histogram("h", "test", ["partner"], buckets=BUCKETS, registry=registry)
    child = histogram.labels("p")
    if fill == "one by one":
        for amount in AMOUNTS:
            child.observe(amount)
    else:
        observe_many(child, AMOUNTS)
        observe_many(child, [])
    return [(s.name, s.labels, s.value) for metric in registry.collect() for s in metric.samples
            if not s.name.endswith("_created")]


def test_bulk_observations_equal_single_ones() -> None:
    assert samples("in bulk") == samples("one by one")


def test_falls_back_to_observe_for_other_histogram_shapes() -> None:
    seen: list[float] = []

    class Plain:
        def observe(self, amount: float) -> None:
            seen.append(amount)

    observe_many(Plain(), [1.0, 2.0])
    assert seen == [1.0, 2.0]
