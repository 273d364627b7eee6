"""From one JSON event to the Kafka record the bus writes: validate, build, encode (pure).

Every entry point of the venue side (webhook gateway, batch endpoint, vendor adapters, CSV
import, web collector) goes through :func:`prepare`, so an event is validated and encoded the
same way whichever door it came in by, exactly once, with no intermediate copy.

Contract:

* :func:`prepare` returns a :class:`Prepared` record (raw topic of the venue, key = subject
  reference, value = Avro in the Confluent framing, headers) or raises :class:`EventRejected`
  with the failing field paths (``[{field, message}]``) and never the offending values.
* ``event_id``: the venue's own if it sent one, else ``fallback_id`` (derived by the caller
  from something the sender repeats on a re-delivery: the webhook id, the vendor's order id…).
* Headers: ``event_id`` (lets the spool check what already reached Kafka without decoding)
  and ``auth`` (how the authenticity of the event was verified, e.g. ``standard-webhooks``,
  ``hmac-sha256:x-ha-signature``, ``basic``, ``site-key``, ``csv-import``).
* Sealing: the direct identifiers and free text of the event are encrypted with its subject's
  data key (:mod:`schemas.sealing`, :mod:`producers.keyring`) before encoding. When that key is
  new, ``Prepared.keys`` holds its key-topic record, which every sender writes (acknowledged)
  before the event: :func:`split_keys` and :func:`confirm_keys` are the senders' side of it.
  A process must call :func:`configure` once before :func:`prepare` (``ConfigError`` otherwise),
  so no door can produce unsealed identifiers by forgetting it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from core.datakeys import MasterKeys
from core.errors import ConfigError, InvalidMessage
from core.errors import EventRejected as EventRejected  # defined with the whole tree
from core.identity import subject_ref
from core.topics import KEYS, raw_topic
from producers.keyring import Keyring
from schemas import CATALOGUE, Catalogue
from schemas.models import INCOMING, to_record
from schemas.moments import out_of_range
from schemas.sealing import SEALER

if TYPE_CHECKING:
    from core.settings import Settings

EVENT_ID_NAMESPACE = uuid.UUID("6f1c63e4-5a8e-4d1e-9d0b-0b8e7f2a9c11")
"""uuid5 namespace of derived event ids (kept from the first gateway: ids stay stable)."""

def derived_event_id(venue_id: str, *parts: str) -> uuid.UUID:
    """Deterministic event id of something a sender may deliver again (webhook id, vendor ids)."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, ":".join((venue_id, *parts)))



@dataclass(frozen=True, slots=True)
class Prepared:
    """One record ready for Kafka, and what the caller reports back."""

    topic: str
    key: bytes
    value: bytes
    event_id: str
    event_type: str
    venue_id: str
    auth: str
    keys: tuple[Prepared, ...] = ()
    """Key-topic records that must be durable before this record is written (see module doc)."""

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [("event_id", self.event_id.encode()), ("auth", self.auth.encode())]


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field paths and messages of a validation error, without the offending input values."""
    out = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = [str(p) for p in err["loc"]]
        if loc and "." in loc[0] and len(loc) > 1:
            loc = loc[1:]  # drop the discriminator tag pydantic inserts (``ticket.order_placed``)
        out.append({"field": ".".join(loc) or "(body)", "message": err["msg"]})
    return out


_catalogue: Catalogue = CATALOGUE
_keyring: Keyring | None = None
_configured = False  # configure() / use_keyring() called (a None keyring then means: sealing off)


def configure(settings: Settings) -> None:
    """Set up this producer process from its settings: schema ids (:func:`use_registry`) and the
    keyring that seals identifiers (off only with ``TECHNE_SEAL_IDENTIFIERS=false``)."""
    use_registry(settings.schema_registry_url)
    use_keyring(Keyring(MasterKeys.from_settings(settings), settings.datakey_cache_seconds)
                if settings.seal_identifiers else None)


def use_keyring(keyring: Keyring | None) -> None:
    """Seal with ``keyring`` (``None``: do not seal; benchmarks and tests of the unsealed path)."""
    global _keyring, _configured
    _keyring, _configured = keyring, True


def split_keys(records: Sequence[Prepared]) -> tuple[list[Prepared], list[Prepared]]:
    """``(key-topic records, the other records)``: what a sender must write first (deduplicated,
    from ``Prepared.keys`` and from key-topic records already flattened, e.g. by the spool), then
    the records themselves, in order."""
    keys: dict[bytes, Prepared] = {}
    events: list[Prepared] = []
    for r in records:
        if r.topic == KEYS:
            keys.setdefault(r.key, r)
            continue
        for k in r.keys:
            keys.setdefault(k.key, k)
        events.append(r)
    return list(keys.values()), events


def confirm_keys(key_records: Sequence[Prepared]) -> None:
    """Tell the keyring these key-topic records are durable (Kafka acknowledged or spooled)."""
    if key_records and _keyring is not None:
        _keyring.confirm(r.key for r in key_records)


def use_registry(registry_url: str | None) -> None:
    """Encode with an external Confluent-compatible registry's ids (``TECHNE_SCHEMA_REGISTRY_URL``)
    instead of the manifest's; called once at process start. ``None`` keeps the shipped ids."""
    global _catalogue
    from schemas.registry_client import catalogue_for

    _catalogue = catalogue_for(registry_url)


FUTURE_TOLERANCE = timedelta(hours=24)
"""How far ahead of its receipt an event may be dated (clock and time-zone slop of venues' systems);
beyond it the event is refused: retention, erasure periods and insights count from ``occurred_at``."""


def prepare(payload: Any, *, venue_id: str, subject_key: bytes, fallback_id: uuid.UUID, auth: str,
            received_at: datetime | None = None) -> Prepared:
    """Validate ``payload`` (a decoded JSON object) and build its Kafka record."""
    try:
        event = INCOMING.validate_python(payload)
    except ValidationError as exc:
        raise EventRejected(field_errors(exc)) from None
    if problems := out_of_range(event):
        raise EventRejected(problems)
    if not _configured:
        raise ConfigError("producer not configured to seal identifiers (TECHNE_DATAKEY_MASTER_KEYS; "
                          "producers.ingest.configure(settings) at start)")
    name, record = to_record(event, venue_id=venue_id, received_at=received_at or datetime.now(UTC),
                             fallback_id=fallback_id)
    if record["occurred_at"] > record["received_at"] + FUTURE_TOLERANCE:
        raise EventRejected([{"field": "occurred_at", "message": "more than 24 h after its receipt: an event's date "
                              "starts its retention, a future date would keep it past its limit"}])
    ref = subject_ref(subject_key, venue_id, record.get("subject") or {})
    keys: tuple[Prepared, ...] = ()
    if _keyring is not None:
        data_key, new = _keyring.key_for(ref)
        SEALER.seal(name, record, data_key)
        if new is not None:
            keys = (Prepared(new[0], new[1], new[2], "key:" + data_key.kid.hex(), "datakey", venue_id, "keyring"),)
    try:
        value = _catalogue.encode(name, record)
    except InvalidMessage as exc:
        raise EventRejected([{"field": "(body)", "message": exc.detail.split(":", 1)[0] + ": does not fit schema"}]
                            ) from None
    return Prepared(raw_topic(venue_id), ref.encode(), value, record["event_id"], record["event_type"], venue_id,
                    auth, keys)
