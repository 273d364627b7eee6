"""Shared by several test modules (tests never import each other)."""

from __future__ import annotations

import asyncio
import json

from core.topics import raw_topic
from tests.conftest import Bus
from tests.integration.kafka_helpers import end_offsets


def raw_offsets(bus: Bus) -> dict[str, int]:
    return asyncio.run(end_offsets(bus.bootstrap, [raw_topic(v) for v in json.loads(bus.env["TECHNE_VENUE_SECRETS"])]))
