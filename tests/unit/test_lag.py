"""The lag exporter watches the groups the bus really uses."""

from __future__ import annotations

from sinks import consumer
from techne.lag import AUDIT_SINK_GROUP, PartitionLag, sink_group, watched_groups


def test_group_names_match_the_sinks() -> None:
    assert AUDIT_SINK_GROUP == consumer.AUDIT_GROUP
    assert sink_group("observatoire") == consumer.group_for("observatoire")


def test_watched_groups_and_prefixes() -> None:
    groups = watched_groups("techne-worker", ["a", "b-c"])
    assert groups == {"techne-worker": ("raw.",), "techne-sink.a": ("partner.a.",),
                      "techne-sink.b-c": ("partner.b-c.",), "techne-audit-sink": ("techne.audit",)}
    with_venues = watched_groups("techne-worker", ["a"], ["v-1"])
    assert with_venues["techne-sink.venue:v-1"] == ("venue.v-1.",), "a venue's own store's sink is watched too"


def test_lag_without_a_commit_counts_from_the_log_start() -> None:
    assert PartitionLag("g", "t", 0, None, 4, 10).lag == 6
    assert PartitionLag("g", "t", 0, 9, 4, 10).lag == 1
    assert PartitionLag("g", "t", 0, 12, 4, 10).lag == 0
