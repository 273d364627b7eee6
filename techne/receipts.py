"""A person's consent receipt at one venue, laid out as ISO/IEC TS 27560 (as Prometheus-X's consent
manager lays its receipts out: ``record``, ``piiProcessing.purposes[]``, ``event[]``,
``partyIdentification[]``).

Where it comes from:

* the person's consent events (given, withdrawn, expired) and erasure requests: the venue's raw
  topic ``raw.<venue>``, keyed by the person's reference (:func:`techne.identity.subject_ref`):
  only that key's partition is read;
* what the bus did with each: the audit store (``consent_recorded``: when the ledger took it;
  ``erasure_requested``: one line per partner and key version, linked by ``command_id`` to the
  partner sink's ``erased`` line with the rows it deleted);
* the agreements: which agreement, and which retention, applies to each named recipient.

Unlike a receipt whose withdrawal only changes a status, each withdrawal here lists the erasures
it caused at partners, and whether each partner has done it (``erasedAt``, ``rowsDeleted``).

:func:`build` is pure; :func:`receipt` gathers and builds (the audit store is read through
:mod:`sinks.reader`, while the audit sink runs or not). :func:`receipt` is what a console or
preference centre calls; it raises :class:`ReceiptError` (French, then English) for an unknown venue
or a person without any consent event, :class:`~core.errors.Unavailable` when Kafka cannot be
reached, and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from core.errors import Refused, Unavailable
from core.identity import subject_ref
from core.kafka_auth import env_kwargs
from core.settings import Settings
from core.topics import partitions_of, raw_topic
from core.venues import load_venues
from schemas.agreements import Agreement, load_agreements
from schemas.codec import Catalogue
from schemas.dataspace.profile import partner_iri, venue_iri
from sinks.reader import open_reader
from sinks.runner import audit_ref
from streams.steps.consent import DEFAULT_TTL, ERASURE_REQUEST_TYPES

SCHEMA_VERSION = "techne-27560-1"
RECEIPT_NAMESPACE = uuid.UUID("6a1f4f0e-27d5-4c60-9e1b-0c5b2f6e2756")
STATES = {"consent.granted": "consent given", "consent.withdrawn": "consent withdrawn",
          "consent.expired": "consent expired"}
WITHDRAWAL = {
    "fr": ("À tout moment, aussi simplement qu'il a été donné : centre de préférences de la salle, ou demande "
           "écrite à la salle. Le retrait arrête le partage en quelques secondes et efface chez chaque "
           "partenaire nommé les données déjà reçues pour cette finalité."),
    "en": ("At any time, as easily as it was given: the venue's preference centre, or a written request to the "
           "venue. Withdrawal stops sharing within seconds and erases at every named partner the data already "
           "received for this purpose."),
}


class ReceiptError(Refused):
    """No receipt can be given (unknown venue, no consent recorded for the person)."""


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:  # the store's "YYYY-MM-DD HH:MM:SS.ffffff" (UTC)
        moment = datetime.fromisoformat(str(value).replace(" ", "T")).replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _recipients(venue: str, purpose: str, partners: Sequence[str],
                agreements: Sequence[Agreement]) -> list[dict[str, Any]]:
    out = []
    for partner in partners:
        covering = [a for a in agreements if venue in a.provider_venues and a.partner == partner
                    and purpose in {p.value for p in a.purposes}]
        out.append({"partyId": partner_iri(partner), "name": partner,
                    "agreements": [a.id for a in covering],
                    "retentionPeriod": f"P{max(a.retention_days for a in covering)}D" if covering else None,
                    "natureOfDataAccess": "pseudonymized events under the agreements named" if covering
                    else "none: no agreement with this partner covers this purpose"})
    return out


def build(*, venue: str, venue_name: str, person_ref: str, events: Sequence[Mapping[str, Any]],
          audit: Sequence[Mapping[str, Any]], agreements: Sequence[Agreement], ttls: Mapping[str, timedelta],
          now: datetime, lang: str = "fr") -> dict[str, Any]:
    """The receipt (pure). ``events``: decoded consent and erasure-request events of the person;
    ``audit``: audit lines (``event_id``, ``outcome``, ``reason``, ``partner``, ``decided_at``,
    ``rows_deleted``, ``command_id``) of those events and of the erasures they caused."""
    if not events:
        raise ReceiptError(f"aucun consentement enregistré pour cette personne à {venue} / "
                           f"no consent recorded for this person at {venue}")
    erased = {a["event_id"]: a for a in audit if a["outcome"] == "erased"}
    ordered = sorted(events, key=lambda e: (e["occurred_at"], str(e["event_id"])))
    timeline: list[dict[str, Any]] = []
    purposes: dict[str, dict[str, Any]] = {}
    for event in ordered:
        event_id = str(event["event_id"])
        lines = [a for a in audit if a["event_id"] == event_id]
        recorded = [a for a in lines if a["outcome"] in ("consent_recorded", "consent_expired")]
        erasures: dict[str, dict[str, Any]] = {}
        for line in (a for a in lines if a["outcome"] == "erasure_requested" and a.get("command_id")
                     and not str(a.get("partner") or "").startswith("venue:")):  # partners only, not the venue's store
            done = erased.get(line["command_id"])
            erasures.setdefault(line["command_id"], {
                "partyId": partner_iri(line["partner"]), "partner": line["partner"], "commandId": line["command_id"],
                "reason": line["reason"], "requestedAt": _iso(line["decided_at"]),
                "state": "done" if done else "pending",
                "erasedAt": _iso(done["decided_at"]) if done else None,
                "rowsDeleted": done.get("rows_deleted") if done else None})
        is_erasure = event["event_type"] in ERASURE_REQUEST_TYPES
        timeline.append({
            "eventId": event_id, "eventTime": _iso(event["occurred_at"]),
            "recordedAt": _iso(recorded[0]["decided_at"]) if recorded else None,
            "eventType": "explicit",
            "eventState": "erasure requested" if is_erasure else STATES.get(event["event_type"], event["event_type"]),
            "purpose": None if is_erasure else event.get("purpose"),
            "recipients": list(event.get("recipients") or []),
            "recipientListVersion": event.get("recipient_list_version") or None,
            "collectionMethod": event.get("collection_method"), "collectionPoint": event.get("collection_point"),
            "erasuresAtPartners": sorted(erasures.values(), key=lambda e: (e["partner"], e["commandId"])),
        })
        for purpose in (list(purposes) if is_erasure else [str(event.get("purpose"))]):
            state = purposes.setdefault(purpose, {"grant": None, "state": "consent withdrawn", "event": event})
            state["event"] = event
            if event["event_type"] == "consent.granted":
                state.update(grant=event, state="consent given")
            else:
                state["state"] = "erasure requested" if is_erasure else STATES.get(event["event_type"], "")
    processing = []
    for purpose, state in sorted(purposes.items()):
        grant = state["grant"]
        status = state["state"]
        valid_until = None
        if status == "consent given" and grant is not None:
            until = grant["occurred_at"] + ttls.get(purpose, DEFAULT_TTL)
            valid_until = _iso(until)
            if until < now:
                status = "consent expired"
        shown = list((grant or {}).get("recipients") or [])
        recipients = _recipients(venue, purpose, shown, agreements)
        retentions = [r["retentionPeriod"] for r in recipients if r["retentionPeriod"]]
        processing.append({
            "purpose": purpose, "lawfulBasis": "consent (GDPR art. 6(1)(a))", "status": status,
            "validUntil": valid_until, "piiControllers": [venue_iri(venue)],
            "collectionMethod": (grant or state["event"]).get("collection_method"),
            "recipientThirdParties": recipients,
            "recipientListVersion": (grant or {}).get("recipient_list_version") or None,
            "retentionPeriod": max(retentions, key=lambda r: int(r[1:-1])) if retentions else None,
            "withdrawalMethod": WITHDRAWAL[lang],
        })
    partners = sorted({r["name"] for p in processing for r in p["recipientThirdParties"]})
    notice = next((e.get("wording_version") for e in reversed(ordered) if e.get("wording_version")), None)
    return {
        "record": {"schemaVersion": SCHEMA_VERSION, "recordId": str(uuid.uuid5(RECEIPT_NAMESPACE,
                                                                                f"{venue}|{person_ref}")),
                   "piiPrincipalId": person_ref, "generatedAt": _iso(now)},
        "piiProcessing": {"privacyNotice": notice, "language": lang, "purposes": processing},
        "event": timeline,
        "partyIdentification": [
            {"partyId": venue_iri(venue), "partyName": venue_name, "partyType": "PII controller"},
            *({"partyId": partner_iri(p), "partyName": p, "partyType": "third party recipient"} for p in partners)],
    }


async def consent_events(bootstrap: str, venue: str, person_ref: str, catalogue: Catalogue,
                         timeout: float = 120.0) -> list[dict[str, Any]]:
    """The person's consent events and erasure requests on ``raw.<venue>`` (their key's partition)."""
    topic = raw_topic(venue)
    parts = (await partitions_of(bootstrap, [topic])).get(topic) or []
    if not parts:
        raise ReceiptError(f"le topic {topic} n'existe pas / topic {topic} does not exist")
    key = person_ref.encode()
    tp = TopicPartition(topic, parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                **env_kwargs())
    await consumer.start()
    found = []
    try:
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.assign([tp])  # no group, no committed offset: reads from the earliest
        deadline = time.monotonic() + timeout
        while end and await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise ReceiptError(f"lecture de {topic} trop lente / reading {topic} timed out ({timeout:.0f} s)")
            for message in (await consumer.getmany(tp, timeout_ms=1000, max_records=5000)).get(tp, []):
                if message.key != key or message.offset >= end:
                    continue
                _, record = catalogue.decode(message.value)
                kind = str(record.get("event_type", ""))
                if kind in STATES or kind in ERASURE_REQUEST_TYPES:
                    found.append(record)
    finally:
        await consumer.stop()
    return found


def audit_trail(settings: Settings, event_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Audit lines of ``event_ids`` and the ``erased`` lines of the erasures they requested, read
    through the one read path (:mod:`sinks.reader`: while the audit sink runs, or not)."""
    columns = ("event_id", "outcome", "reason", "partner", "purpose", "toString(decided_at)", "rows_deleted",
               "details")
    sql = (f"SELECT {', '.join(columns)} FROM decisions WHERE event_id IN {{ids:Array(String)}} "  # noqa: S608
           "ORDER BY decided_at, kafka_partition, kafka_offset, kafka_line")
    with open_reader(settings, audit_ref(settings)) as reader:
        def fetch(ids: Sequence[str]) -> list[dict[str, Any]]:
            out = []
            for row in reader.query(sql, {"ids": list(ids)}):
                line = dict(zip(("event_id", "outcome", "reason", "partner", "purpose", "decided_at",
                                 "rows_deleted"), row[:7], strict=True))
                line["command_id"] = json.loads(row[7]).get("command_id") if row[7] else None
                out.append(line)
            return out

        lines = fetch(event_ids) if event_ids else []
        commands = sorted({a["command_id"] for a in lines if a["outcome"] == "erasure_requested" and a["command_id"]})
        return lines + ([a for a in fetch(commands) if a["outcome"] == "erased"] if commands else [])


def person_ref(settings: Settings, venue: str, email: str) -> str:
    """The person's reference at ``venue`` from their e-mail (needs the subject key)."""
    return subject_ref(settings.require_subject_key(), venue, {"email": email})


def receipt(settings: Settings, venue: str, person: str, lang: str = "fr",
            now: datetime | None = None) -> dict[str, Any]:
    """The receipt of person reference ``person`` at ``venue`` (see module doc)."""
    from schemas.registry_client import catalogue_for

    venues = load_venues(settings.venues_file)
    if venue not in venues:
        raise ReceiptError(f"salle inconnue : {venue} / unknown venue: {venue}")
    if lang not in WITHDRAWAL:
        raise ReceiptError(f"langue inconnue : {lang} (fr, en) / unknown language: {lang}")
    agreements = load_agreements(settings.agreements_dir, set(venues))
    try:
        events = asyncio.run(consent_events(settings.bootstrap, venue, person,
                                            catalogue_for(settings.schema_registry_url)))
    except KafkaError as exc:
        raise Unavailable(f"Kafka injoignable à {settings.bootstrap} / unreachable at {settings.bootstrap}: "
                          f"{type(exc).__name__}") from None
    if not events:
        raise ReceiptError(f"aucun consentement enregistré pour cette personne à {venue} / "
                           f"no consent recorded for this person at {venue}")
    audit = audit_trail(settings, sorted({str(e["event_id"]) for e in events}))
    ttls = {p: timedelta(days=d) for p, d in settings.consent_ttl_days.items()}
    return build(venue=venue, venue_name=venues[venue].name, person_ref=person, events=events, audit=audit,
                 agreements=agreements, ttls=ttls, now=now or datetime.now(UTC), lang=lang)
