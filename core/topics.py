"""Topic names of the bus and their creation (the broker does not auto-create topics).

Each venue has one raw topic, ``raw.<venue_id>``, holding all its event types (consent and
ticketing alike), keyed by subject reference: Kafka orders records per partition, so a
person's consent change and their later orders are processed in the order they were
accepted (two topics would give no such order). Raw topics share one partition count, so
they are co-partitioned with the consent ledger.

Lifetimes. Topics that hold direct identifiers (sealed, see schemas/sealing.py) are created with
a bounded retention (:class:`TopicPolicy`, from the settings): ``raw.*`` and ``dlq.*`` delete
records after ``TECHNE_RAW_RETENTION_HOURS`` / ``TECHNE_DLQ_RETENTION_HOURS``; the data-key topic
``techne.keys`` is compacted, rolls and compacts its segments within ``TECHNE_KEYS_COMPACTION_HOURS``
and keeps a shredding tombstone ``TECHNE_KEYS_TOMBSTONE_HOURS``. :func:`check_topics` reads the
configuration of existing topics back and lists every topic that keeps data longer than those
bounds; :func:`ensure_bus_topics` creates, checks and refuses to start on any excess (or only
warns, loudly, on a cluster the bus does not own: ``TECHNE_KAFKA_TOPICS_OWNED=false``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from core.errors import ConfigError
from core.kafka_auth import env_kwargs

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger("techne.topics")
AUDIT = "techne.audit"
LEDGER_CHANGELOG = "consent-ledger-changelog"
"""Suffix of the worker's consent-ledger changelog (``<worker id>-consent-ledger-changelog``)."""
KEYS = "techne.keys"
"""Data keys of crypto-shredding (compacted): ``<subject>/<kid>`` -> wrapped key; tombstone = shredded."""
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
    return [*(raw_topic(v) for v in venues), AUDIT, KEYS, *(dlq_topic(s) for s in DLQ_STAGES),
            *(partner_topic(p, s) for p in partners for s in streams),
            *(venue_topic(v, s) for v in venues for s in (*VENUE_STREAMS, "erasure"))]


_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TopicPolicy:
    """The lifetimes the bus sets on the topics holding identifiers, and the most it accepts."""

    raw_hours: float = 168.0
    dlq_hours: float = 168.0
    keys_compaction_hours: float = 1.0
    keys_tombstone_hours: float = 24.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicPolicy:
        return cls(settings.raw_retention_hours, settings.dlq_retention_hours, settings.keys_compaction_hours,
                   settings.keys_tombstone_hours)

    def configs(self, name: str) -> dict[str, str]:
        """Topic configuration the bus creates ``name`` with (empty: the broker's defaults)."""
        if name.startswith("raw."):
            return {"cleanup.policy": "delete", "retention.ms": str(int(self.raw_hours * _HOUR_MS))}
        if name.startswith("dlq."):
            return {"cleanup.policy": "delete", "retention.ms": str(int(self.dlq_hours * _HOUR_MS))}
        if name == KEYS or name.endswith(LEDGER_CHANGELOG):
            lag = str(int(self.keys_compaction_hours * _HOUR_MS))
            return {"cleanup.policy": "compact", "segment.ms": lag, "max.compaction.lag.ms": lag,
                    "min.compaction.lag.ms": "0", "min.cleanable.dirty.ratio": "0.01",
                    "delete.retention.ms": str(int(self.keys_tombstone_hours * _HOUR_MS))}
        return {}

    def problems(self, name: str, actual: dict[str, str]) -> list[str]:
        """Why the configuration ``actual`` of topic ``name`` keeps data longer than this policy allows."""
        wanted = self.configs(name)
        out: list[str] = []
        if name == KEYS or name.endswith(LEDGER_CHANGELOG):
            if actual.get("cleanup.policy") != "compact":
                out.append(f"{name}: cleanup.policy={actual.get('cleanup.policy')}, must be 'compact'")
            for conf in ("segment.ms", "max.compaction.lag.ms", "delete.retention.ms"):
                if _longer(actual.get(conf), wanted[conf]):
                    setting = "TECHNE_KEYS_TOMBSTONE_HOURS" if conf == "delete.retention.ms" else \
                        "TECHNE_KEYS_COMPACTION_HOURS"
                    out.append(f"{name}: {conf}={actual.get(conf)} exceeds the bound {wanted[conf]} ms "
                               f"({int(wanted[conf]) / _HOUR_MS:g} h, {setting})")
            return out
        if "retention.ms" in wanted:
            if "delete" not in str(actual.get("cleanup.policy", "delete")):
                out.append(f"{name}: cleanup.policy={actual.get('cleanup.policy')} never deletes records")
            elif _longer(actual.get("retention.ms"), wanted["retention.ms"]):
                setting = "TECHNE_RAW_RETENTION_HOURS" if name.startswith("raw.") else "TECHNE_DLQ_RETENTION_HOURS"
                out.append(f"{name}: retention.ms={actual.get('retention.ms')} exceeds the bound "
                           f"{wanted['retention.ms']} ms ({int(wanted['retention.ms']) / _HOUR_MS:g} h, {setting}) "
                           "for a topic holding identifiers")
        return out


def _longer(actual: str | None, bound: str) -> bool:
    """``actual`` (ms, -1 = forever, None = unknown) is longer than ``bound``."""
    if actual is None:
        return True
    value = int(actual)
    return value < 0 or value > int(bound)


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, replication: int = 1,
                        policy: TopicPolicy | None = None) -> list[str]:
    """Create the missing topics among ``names`` with the lifetimes of ``policy`` (the default
    bounds when None); return those created. A topic the broker refuses to create (a replication
    factor above the number of brokers, a configuration it rejects, no authorization) raises
    :class:`ConfigError` naming it and the broker's reason."""
    policy = policy or TopicPolicy()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            response = await admin.create_topics([NewTopic(n, partitions, replication,
                                                           topic_configs=policy.configs(n) or None) for n in missing])
            raise_refused_topics(response)
        return missing
    finally:
        await admin.close()


def raise_refused_topics(response: object) -> None:
    """Raise :class:`ConfigError` for each topic a ``CreateTopics`` response did not create; a
    topic created meanwhile by another process is fine. (aiokafka returns the per-topic errors
    in the response instead of raising them.)"""
    refused = []
    for topic, code, *message in getattr(response, "topic_errors", []):
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        reason = f"{for_code(code).__name__}" + (f": {message[0]}" if message and message[0] else "")
        refused.append(f"{topic} ({reason})")
    if refused:
        raise ConfigError("the broker refused to create topics: " + "; ".join(refused))


async def topic_configs(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    """The effective configuration of each existing topic among ``names``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        out: dict[str, dict[str, str]] = {}
        for response in responses:
            for resource in response.resources:
                error_code, _, _, resource_name, entries = resource[:5]
                if error_code == 0:
                    out[resource_name] = {e[0]: e[1] for e in entries}
        return out
    finally:
        await admin.close()


async def check_topics(bootstrap: str, names: list[str], policy: TopicPolicy) -> list[str]:
    """Every topic among ``names`` whose configuration keeps identifiers longer than ``policy``."""
    checked = [n for n in names if policy.configs(n)]
    configs = await topic_configs(bootstrap, checked)
    return [line for n in checked if n in configs for line in policy.problems(n, configs[n])]


async def ensure_bus_topics(settings: Settings, names: list[str], also_check: Sequence[str] = ()) -> list[str]:
    """Create the missing topics among ``names`` with the settings' lifetimes, then check them and
    ``also_check`` (topics others create, e.g. Faust's changelog): ``ConfigError`` listing each
    excess when the bus owns the cluster, a loud warning otherwise."""
    policy = TopicPolicy.from_settings(settings)
    created = await ensure_topics(settings.bootstrap, names, settings.partitions, settings.replication_factor,
                                  policy=policy)
    problems = await check_topics(settings.bootstrap, [*names, *also_check], policy)
    if problems and settings.kafka_topics_owned:
        raise ConfigError("topics keep personal data longer than the configured bounds:\n  " + "\n  ".join(problems)
                          + "\nlower them (kafka-configs.sh --alter --entity-type topics --add-config ...) or raise "
                            "TECHNE_RAW_RETENTION_HOURS / TECHNE_DLQ_RETENTION_HOURS knowingly (docs/privacy.md)")
    for line in problems:
        log.warning("RETENTION ABOVE THE BOUND on a cluster the bus does not own (TECHNE_KAFKA_TOPICS_OWNED=false): "
                    "%s", line)
    return created


async def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, list[int]]:
    """Partition numbers of each existing topic (missing topics map to an empty list)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        return {d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described}
    finally:
        await admin.close()
