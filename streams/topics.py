"""Topic names of the bus and their creation (the broker does not auto-create topics).

Raw topics are co-partitioned (same partition count, same key: the subject reference) so the
worker that holds a subject's consent-ledger partition also sees that subject's events.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

RAW_TICKETING = "raw.ticketing"
RAW_CONSENT = "raw.consent"
RAW_TOPICS = (RAW_TICKETING, RAW_CONSENT)
AUDIT = "techne.audit"
DLQ = "techne.dlq"


def bus_topics(partners: list[str], streams: tuple[str, ...] = ("ticketing",)) -> list[str]:
    """Every topic the bus needs for these partners."""
    return [*RAW_TOPICS, AUDIT, DLQ, *(f"partner.{p}.{s}" for p in partners for s in streams)]


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, replication: int = 1) -> list[str]:
    """Create the missing topics among ``names``; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(n, partitions, replication) for n in missing])
            except TopicAlreadyExistsError:
                pass  # created concurrently by another process
        return missing
    finally:
        await admin.close()
