"""Where the SIBIL declaration reads from: the venue's own store (by default), or its raw topic.

**The venue's own store** (:func:`read_venue_store`, ``venue_<venue>.ticket_orders``, fed by
``venue.<venue>.ticketing``) holds every ticketing event of the venue, consented or not (the
venue's own data, pseudonymized in its own domain), for 3 years: a past quarter comes out whole.
Only order-level columns are read (:data:`insights.sibil.STORE_COLUMNS`), never the pseudonym;
the rows of every order with a row whose performance falls in the quarter (an exchange can move
a ticket in or out). :class:`StoreCoverage` warns when the store starts after the quarter began,
when the quarter is older than the store's retention, and when persons were erased from the
store at their request (their orders are no longer there, so the figures may be low).

The raw topic (the former source, ``techne sibil --from-topic``) is kept below for a venue
without a store of its own.

Why there, and not a partner's store: the declaration is the venue's legal obligation and counts
*every* ticket, including those of persons who gave no consent to any sharing; partner stores only
hold consented, projected, pseudonymized orders of one partner (and are that partner's data). The
raw topic holds every ticketing event the venue sent (orders, tickets, cancellations, refunds,
exchanges), in the venue's own perimeter; only aggregates leave this module's caller.

:func:`read_venue_events` reads the topic from its first retained offset to its end offsets at
the start of the read, as a plain assigned consumer (no consumer group, nothing committed: it
cannot disturb the worker), decodes each record with the catalogue, keeps ticketing events only
and drops the subject block at once (:func:`insights.sibil.strip`). :class:`Coverage` says what
the read could see: when the topic's retention has already deleted events (first offset > 0) or
the first event is later than the quarter's start, the summary warns that figures may be
incomplete.

Raw retention. The bus creates ``raw.*`` with a short, enforced lifetime
(``TECHNE_RAW_RETENTION_HOURS``, 7 days by default; docs/privacy.md): ``--from-topic`` covers only
that window, which is why the venue's store is the default source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from core.errors import InvalidMessage, TechneError
from core.kafka_auth import aiokafka_kwargs
from core.settings import Settings
from core.topics import raw_topic
from insights.sibil import PARIS, STORE_COLUMNS, TICKETING_TYPES, Quarter, strip
from schemas.codec import CATALOGUE
from schemas.kinds import OWN_PURPOSE
from sinks.ddl import quote
from sinks.reader import open_reader
from sinks.runner import partner_ref
from sinks.tables import ERASURES, TICKET_ORDERS, VENUE_RETENTION_DAYS, VENUE_STORE


@dataclass
class Coverage:
    records: int = 0
    ticketing: int = 0
    undecodable: int = 0
    truncated: bool = False
    first_event: datetime | None = None

    def warnings(self, quarter: Quarter, lang: str = "fr") -> list[str]:
        fr = lang == "fr"
        out = []
        if self.truncated:
            out.append("la rétention du topic a déjà supprimé des événements : chiffres peut-être incomplets "
                       "(TECHNE_RAW_RETENTION_HOURS, docs/privacy.md)" if fr else
                       "the topic's retention already deleted events: figures may be incomplete "
                       "(TECHNE_RAW_RETENTION_HOURS, docs/privacy.md)")
        start = datetime.combine(quarter.first_day, datetime.min.time(), tzinfo=PARIS)
        if self.first_event is not None and self.first_event > start:
            first = self.first_event.astimezone(PARIS).strftime("%d/%m/%Y")
            out.append(f"premier événement le {first}, après le début du trimestre : chiffres peut-être incomplets"
                       if fr else f"first event on {first}, after the quarter's start: figures may be incomplete")
        if self.undecodable:
            out.append(f"{self.undecodable} message(s) illisible(s) ignoré(s)" if fr
                       else f"{self.undecodable} undecodable message(s) skipped")
        return out


def _earliest(current: datetime | None, record: dict[str, Any]) -> datetime | None:
    at = record.get("occurred_at")
    if not isinstance(at, datetime):
        return current
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at if current is None or at < current else current


async def read_venue_events(settings: Settings, venue: str, timeout_ms: int = 1000) -> tuple[list[dict[str, Any]],
                                                                                            Coverage]:
    """Every ticketing event of ``raw.<venue>`` (stripped), and what the read covered."""
    topic = raw_topic(venue)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None, **aiokafka_kwargs(settings.kafka_auth()))
    coverage, events = Coverage(), []
    try:
        await consumer.start()
        partitions = await _partitions(settings, topic)
        if not partitions:
            raise TechneError(f"topic {topic} does not exist: is {venue!r} a venue of the bus?")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        coverage.truncated = any(starts[tp] > 0 for tp in tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, batch in (await consumer.getmany(*tps, timeout_ms=timeout_ms)).items():
                for message in batch:
                    if message.offset >= ends[tp] or message.value is None:
                        continue
                    coverage.records += 1
                    try:
                        _, record = CATALOGUE.decode(message.value)
                    except InvalidMessage:
                        coverage.undecodable += 1
                        continue
                    if record.get("event_type") in TICKETING_TYPES:
                        coverage.ticketing += 1
                        coverage.first_event = _earliest(coverage.first_event, record)
                        events.append(strip(record))
    except KafkaError as exc:
        raise TechneError(f"cannot read {topic} from {settings.bootstrap}: {exc}") from exc
    finally:
        await consumer.stop()
    return events, coverage


async def _partitions(settings: Settings, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, **aiokafka_kwargs(settings.kafka_auth()))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for d in described if d["topic"] == topic for p in d["partitions"])


@dataclass
class StoreCoverage:
    """What a read of the venue's own store could see (see module doc)."""

    rows: int = 0
    first_row: datetime | None = None
    erasures: int = 0
    today: datetime | None = None

    def warnings(self, quarter: Quarter, lang: str = "fr") -> list[str]:
        fr = lang == "fr"
        out = []
        start = datetime.combine(quarter.first_day, datetime.min.time(), tzinfo=PARIS)
        if self.first_row is None:
            out.append("la base du lieu ne contient aucune commande" if fr else "the venue store holds no order")
        elif self.first_row > start:
            first = self.first_row.astimezone(PARIS).strftime("%d/%m/%Y")
            out.append(f"la base du lieu commence le {first}, après le début du trimestre : chiffres peut-être "
                       "incomplets" if fr else f"the venue store starts on {first}, after the quarter's start: "
                       "figures may be incomplete")
        today = self.today or datetime.now(UTC)
        if start < today - timedelta(days=VENUE_RETENTION_DAYS):
            out.append(f"trimestre plus ancien que la conservation de la base du lieu ({VENUE_RETENTION_DAYS} jours)"
                       if fr else f"quarter older than the venue store's retention ({VENUE_RETENTION_DAYS} days)")
        if self.erasures:
            out.append(f"{self.erasures} effacement(s) de personnes à leur demande dans la base du lieu : leurs "
                       "commandes n'y figurent plus, chiffres peut-être sous-estimés" if fr else
                       f"{self.erasures} erasure(s) of persons at their request in the venue store: their orders are "
                       "no longer there, figures may be low")
        return out


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC) if value is not None else None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def store_rows(reader: Any, database: str, quarter: Quarter) -> tuple[list[dict[str, Any]], StoreCoverage]:
    """The lifecycle rows of every order of the venue with a performance in ``quarter`` (any of
    its rows), from ``<database>.ticket_orders`` through ``reader`` (``query(sql, params)``)."""
    start = datetime.combine(quarter.first_day, datetime.min.time(), tzinfo=PARIS).astimezone(UTC)
    end = datetime.combine(quarter.next_first_day, datetime.min.time(), tzinfo=PARIS).astimezone(UTC)
    table, key = f"{quote(database)}.{quote(TICKET_ORDERS)}", "coalesce(order_ref, toString(event_id))"
    params = {"p": OWN_PURPOSE, "s": start.strftime("%Y-%m-%d %H:%M:%S"), "e": end.strftime("%Y-%m-%d %H:%M:%S")}
    rows = reader.query(
        f"SELECT {', '.join(STORE_COLUMNS)} FROM {table} FINAL WHERE purpose = {{p:String}} AND {key} IN ("  # noqa: S608
        f"SELECT {key} FROM {table} WHERE purpose = {{p:String}} AND performance_at >= {{s:DateTime64(6, 'UTC')}} "
        f"AND performance_at < {{e:DateTime64(6, 'UTC')}})", params)
    out = []
    for row in rows:
        record = dict(zip(STORE_COLUMNS, row, strict=True))
        record["occurred_at"], record["performance_at"] = _ts(record["occurred_at"]), _ts(record["performance_at"])
        out.append(record)
    ((first,),) = reader.query(f"SELECT min(occurred_at) FROM {table} WHERE purpose = {{p:String}}",  # noqa: S608
                               {"p": OWN_PURPOSE})
    ((erased,),) = reader.query(f"SELECT count() FROM {quote(database)}.{quote(ERASURES)}")  # noqa: S608
    any_rows = reader.query(f"SELECT count() FROM {table}")[0][0]  # noqa: S608
    return out, StoreCoverage(len(out), _ts(first) if int(any_rows) else None, int(erased))


def read_venue_store(settings: Settings, venue: str, quarter: Quarter) -> tuple[list[dict[str, Any]], StoreCoverage]:
    """:func:`store_rows` on the venue's own store (the one read path: also while its sink runs)."""
    ref = partner_ref(settings, f"{VENUE_STORE}{venue}")
    with open_reader(settings, ref) as reader:
        return store_rows(reader, ref.database, quarter)
