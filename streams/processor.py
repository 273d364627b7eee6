"""What the worker does with one raw message, without Faust (the agent is a thin shell).

:meth:`Processor.handle` takes the message bytes, its key (the subject reference) and a read
of the consent ledger, and returns a :class:`Result`: records to produce (partner events,
erasure commands, audit lines, dead letters) and the ledger update, if any. It performs no
I/O, so it is unit-testable and benchmarkable on its own.

Outcomes per message: a consent-type event updates the ledger (and may emit erasure
commands); a shareable event (every kind of :mod:`schemas.kinds`) is routed per agreement
(shared / dropped for consent / no agreement) and to the venue's own store (``venue_store``:
own use, or consent-exempt measurement), with one audit line per decision; anything that cannot
be processed becomes a dead letter on ``dlq.<stage>`` carrying the original bytes and the reason
in headers. Shared records are keyed by their pseudonym (by their event id when it is empty:
ad spend, an anonymous scan).

Sealed identifiers (schemas/sealing.py) are opened right after decoding with ``keys(subject,
kid)`` (the worker's key store). An event whose data key was shredded (an erasure request) is
audited ``subject_erased`` and produces nothing else (a key whose record exists but cannot be
unwrapped is not shredded: ``keys`` raises, and the event is a dead letter ``key_unreadable``);
a consent-type event of such a subject
still updates the ledger (it carries no identifier the ledger needs). An erasure request sets
:attr:`Result.shred`: once its outputs are acknowledged, the agent deletes the subject's data
keys (streams/keystore.py) and, once the tombstones are acknowledged, sends the audit line
``keys_shredded``. Without ``keys`` every sealed field stays
closed (fail closed: nothing of a sealed event is shared).

Every valid message yields exactly one ``techne.audit`` record holding all its decision lines
(NDJSON, see :func:`audit_record`): one send per message instead of one per decision, which
measurably cheapens the worker (``techne bench streams``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core import metrics
from core.dlq import letter_headers
from core.errors import InvalidMessage
from core.identity import ANONYMOUS
from core.topics import AUDIT, dlq_topic
from schemas import CATALOGUE, Catalogue
from schemas.agreements import Agreement
from schemas.models import ERASURE_COMMAND, EVENT_SCHEMAS
from schemas.sealing import SEALER
from streams.steps.consent import ERASURE_REQUEST_TYPES, PURPOSES, LedgerEntry, apply_consent
from streams.steps.erasure import erasure_commands
from streams.steps.route import Decision, own_store, route, shareable

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)


@dataclass
class Result:
    outputs: list[Output] = field(default_factory=list)
    ledger_update: LedgerEntry | None = None
    invalid: bool = False
    shred: Shred | None = None


@dataclass(frozen=True)
class Shred:
    """Delete ``subject``'s data keys once the outputs are acknowledged, then send ``audit``."""

    subject: str
    audit: Output


KeysLookup = Callable[[str, bytes], Any]
"""(subject, kid) -> the cipher of that data key, or None when it was shredded."""


def _no_keys(subject: str, kid: bytes) -> None:
    return None


def decision(record: Mapping[str, Any], outcome: str, reason: str, *, agreement_id: str | None = None,
             partner: str | None = None, purpose: str | None = None, command_id: str | None = None,
             decided_at: str | None = None, auth: str | None = None) -> dict[str, Any]:
    """One audit line: what was decided for which event, why, for whom. No identifiers.
    ``command_id`` links an ``erasure_requested`` line to the sink's ``erased`` line; ``auth`` says
    how the event's source authenticated (its ``auth`` header: ``standard-webhooks``,
    ``hmac-sha256:x-ha-signature``, ``basic``, ``api-key:x-api-key``, ``poll:<source>:…``,
    ``csv-import``, ``site-key:…``, ``preference-centre:signed-link``)."""
    line: dict[str, Any] = {
        "event_id": str(record.get("event_id", "")), "venue_id": record.get("venue_id"),
        "event_type": record.get("event_type"), "outcome": outcome, "reason": reason,
        "agreement_id": agreement_id, "partner": partner, "purpose": purpose,
        "decided_at": decided_at or datetime.now(UTC).isoformat(),
    }
    if command_id is not None:
        line["command_id"] = command_id
    if auth is not None:
        line["auth"] = auth
    return line


def audit_record(record: Mapping[str, Any], lines: list[dict[str, Any]]) -> Output:
    """The one ``techne.audit`` record of an input message: its decision lines as NDJSON
    (one JSON object per line, in decision order), keyed by event id. A single-line record is
    a plain JSON object, the shape the sinks' ``erased`` records also have."""
    value = b"\n".join(json.dumps(line).encode() for line in lines)
    return Output(AUDIT, str(record.get("event_id", "")).encode(), value)


def audit_line(record: Mapping[str, Any], outcome: str, reason: str, **kwargs: Any) -> Output:
    """An audit record of a single decision (see :func:`decision`)."""
    return audit_record(record, [decision(record, outcome, reason, **kwargs)])


def dead_letter(value: bytes, key: bytes | None, source_topic: str, exc: InvalidMessage) -> Output:
    metrics.DEAD_LETTERS.labels(stage=exc.stage, reason=exc.reason).inc()
    return Output(dlq_topic(exc.stage), key, value, letter_headers(exc.stage, exc.reason, exc.detail, source_topic))


def _key(d: Decision) -> bytes:
    """A shared record's message key: its pseudonym, or its event id when it has none."""
    assert d.record is not None
    return str(d.record["subject_pseudonym"] or d.record["event_id"]).encode()


class Processor:
    """Pure per-message logic of the worker, configured once."""

    def __init__(self, agreements: list[Agreement], keys: Mapping[int, bytes], key_version: int,
                 ttls: Mapping[str, timedelta] | None = None, catalogue: Catalogue = CATALOGUE) -> None:
        self.catalogue = catalogue  # with an external registry's ids when one is configured
        self.agreements = agreements
        self.keys = dict(keys)
        self.key_version = key_version
        self.key = self.keys[key_version]
        self.ttls = dict(ttls or {})

    def handle(self, value: bytes, key: bytes | None, source_topic: str,
               ledger_get: Callable[[str], LedgerEntry | None], auth: str | None = None,
               keys: KeysLookup = _no_keys) -> Result:
        subject = key.decode() if isinstance(key, bytes) else str(key)
        try:
            name, record = self.catalogue.decode(value)
            shredded = SEALER.open(name, record, lambda kid: keys(subject, kid))
        except InvalidMessage as exc:
            return Result([dead_letter(value, key, source_topic, exc)], invalid=True)
        event_type = str(record.get("event_type", ""))
        # a free string in the Avro schemas: the label keeps to the catalogue's types (bounded series)
        metrics.STREAM_EVENTS.labels(event_type=event_type if event_type in EVENT_SCHEMAS else "other").inc()
        if event_type.startswith("consent.") or event_type in ERASURE_REQUEST_TYPES:
            result = self._consent(record, subject, ledger_get, auth)
            if event_type in ERASURE_REQUEST_TYPES and subject != ANONYMOUS and not shredded:
                result.shred = Shred(subject, audit_line(record, "keys_shredded", "erasure_request"))
            return result
        if shredded:
            return Result([audit_line(record, "subject_erased", "data_key_shredded")])
        if not shareable(name, event_type):
            # a valid event of a type no agreement can share (web, most campaign events, …): not a
            # failure, so not a dead letter (it must not count towards the poison-flood guard)
            return Result([audit_line(record, "no_agreement", "type_not_shareable", auth=auth)])
        try:
            ledger = ledger_get(subject)
            decisions = route(record, self.agreements, ledger, key_version=self.key_version,
                              key=self.key, ttls=self.ttls)
            decisions.append(own_store(record, ledger, key_version=self.key_version, key=self.key, ttls=self.ttls))
        except InvalidMessage as exc:
            return Result([dead_letter(value, key, source_topic, exc)], invalid=True)
        except ValueError as exc:
            unshareable = InvalidMessage("route", "unshareable", str(exc))
            return Result([dead_letter(value, key, source_topic, unshareable)], invalid=True)
        outputs: list[Output] = []
        lines: list[dict[str, Any]] = []
        decided_at = datetime.now(UTC).isoformat()
        for d in decisions:
            if d.outcome in ("shared", "venue_store") and d.record is not None and d.topic is not None:
                outputs.append(Output(d.topic, _key(d), self.catalogue.encode(d.schema, d.record)))
                if d.outcome == "shared":
                    metrics.ROUTED.labels(partner=d.partner, purpose=d.purpose).inc()
            elif d.outcome == "dropped":
                metrics.CONSENT_DROPS.labels(partner=d.partner, purpose=d.purpose).inc()
            lines.append(decision(record, d.outcome, d.reason, agreement_id=d.agreement_id, partner=d.partner,
                                  purpose=d.purpose, decided_at=decided_at, auth=auth))
        outputs.append(audit_record(record, lines))
        return Result(outputs)

    def _consent(self, record: dict[str, Any], subject: str,
                 ledger_get: Callable[[str], LedgerEntry | None], auth: str | None = None) -> Result:
        previous = ledger_get(subject)
        entry, changed = apply_consent(previous, record)
        purpose = str(record.get("purpose") or "*")
        label = purpose if purpose in PURPOSES or purpose == "*" else "other"  # a free string too
        metrics.CONSENT_UPDATES.labels(purpose=label, outcome="applied" if changed else "stale").inc()
        outcome = "consent_expired" if record.get("event_type") == "consent.expired" else "consent_recorded"
        recorded = decision(record, outcome, "applied" if changed else "stale", purpose=purpose, auth=auth)
        if isinstance(record.get("received_at"), datetime):  # the console times a withdrawal's stop from it
            recorded["received_at"] = record["received_at"].isoformat()
        lines = [recorded]
        outputs: list[Output] = []
        if changed:
            for topic, command in erasure_commands(previous, record, self.agreements, keys=self.keys,
                                                   issued_at=datetime.now(UTC)):
                outputs.append(Output(topic, command["subject_pseudonym"].encode(),
                                      self.catalogue.encode(ERASURE_COMMAND, command)))
                lines.append(decision(record, "erasure_requested", command["reason"], partner=command["partner"],
                                      purpose=purpose, command_id=command["command_id"], auth=auth))
                metrics.ERASURES_ISSUED.labels(partner=command["partner"], reason=command["reason"]).inc()
        outputs.append(audit_record(record, lines))
        return Result(outputs, ledger_update=entry if changed else None)
