"""Creating the bus's topics: a CreateTopics answer's per-topic errors are not swallowed (pure)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.errors import ConfigError
from core.topics import raise_refused_topics


def test_only_topics_the_broker_refused_are_reported() -> None:
    created, raced = ("raw.a", 0, None), ("raw.b", 36, "Topic 'raw.b' already exists.")
    refused = ("raw.c", 38, "Replication factor: 3 larger than available brokers: 1.")
    denied = ("raw.d", 29, None)  # v0 answers carry no message
    raise_refused_topics(SimpleNamespace(topic_errors=[created, raced]))
    with pytest.raises(ConfigError) as err:
        raise_refused_topics(SimpleNamespace(topic_errors=[created, raced, refused, denied]))
    text = str(err.value)
    assert "raw.c (InvalidReplicationFactorError: Replication factor: 3 larger" in text
    assert "raw.d (TopicAuthorizationFailedError)" in text
    assert "raw.a" not in text and "raw.b" not in text
