"""Topic names of the bus and their creation (the broker does not auto-create topics).

Each venue has one raw topic, ``raw.<venue_id>``, holding all its event types (consent and
ticketing alike), keyed by subject reference: Kafka orders records per partition, so a
person's consent change and their later orders are processed in the order they were
accepted (two topics would give no such order). Raw topics share one partition count, so
they are co-partitioned with the consent ledger.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from core.kafka_auth import env_kwargs

AUDIT = "techne.audit"
DLQ_STAGES = ("decode", "route", "sink")  # the worker's two steps, and the sinks (sinks.dlq)


def dlq_topic(stage: str) -> str:
    """Dead letters of one stage: original bytes in the value, the reason in headers."""
    return f"dlq.{stage}"


def raw_topic(venue_id: str) -> str:
    """The raw topic of one venue."""
    return f"raw.{venue_id}"


SHARED_STREAMS = ("ticketing", "campaign", "mailing", "attendance", "web", "content", "adspend")
"""Per partner, the streams of shared events, which the partner's sink stores: ticket order
lifecycle, e-mail clicks, other campaign events, entrance scans, page views, content
interactions, ad spend (the streams of ``schemas.kinds.KINDS``, in that order)."""
PARTNER_STREAMS = (*SHARED_STREAMS, "erasure")
"""Every stream of a partner: the shared events, then erasure commands."""
VENUE_STREAMS = (*SHARED_STREAMS, "measurement")
"""Per venue, the streams of its own store: every kind, then consent-exempt audience measurement."""


def partner_topic(partner: str, stream: str) -> str:
    """``partner.<partner>.<stream>``: one stream of one partner (readable by that partner only)."""
    return f"partner.{partner}.{stream}"


def venue_topic(venue_id: str, stream: str) -> str:
    """``venue.<venue>.<stream>``: one stream of a venue's own store (readable by that venue only)."""
    return f"venue.{venue_id}.{stream}"


def erasure_topic(partner: str) -> str:
    """Erasure commands for one partner's stores (the partner reads them too)."""
    return partner_topic(partner, "erasure")


def bus_topics(venues: list[str], partners: list[str], streams: tuple[str, ...] = PARTNER_STREAMS) -> list[str]:
    """Every topic the bus needs for these venues and partners."""
    return [*(raw_topic(v) for v in venues), AUDIT, *(dlq_topic(s) for s in DLQ_STAGES),
            *(partner_topic(p, s) for p in partners for s in streams),
            *(venue_topic(v, s) for v in venues for s in (*VENUE_STREAMS, "erasure"))]


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, replication: int = 1) -> list[str]:
    """Create the missing topics among ``names``; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently by another process
                await admin.create_topics([NewTopic(n, partitions, replication) for n in missing])
        return missing
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, list[int]]:
    """Partition numbers of each existing topic (missing topics map to an empty list)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        return {d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described}
    finally:
        await admin.close()
