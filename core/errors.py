"""The one exception tree of the bus.

Every error the bus raises on purpose is defined here (the door's, beside its parser) and derives
from :class:`TechneError`.
The first split is what the caller should do about it::

    TechneError
    ├── Refused                  permanent: the same input is refused again; answer 4xx, dead-letter,
    │   │                        or exit 2 — never retry
    │   ├── ConfigError          settings, agreements, venues, manifest invalid (at start)
    │   │   └── ManifestError
    │   ├── InvalidMessage       a message that can never be processed -> dlq.<stage> with its reason
    │   ├── EventRejected        schema-invalid event -> 422 with {field, message} errors
    │   ├── PayloadRejected      a vendor payload the adapter does not understand -> 422
    │   ├── AuthRejected         not authenticated for this venue and source -> 401
    │   │   └── SignatureRejected  Standard Webhooks signature refused (``code``) -> 401
    │   ├── StoreMissing         a store to read does not exist (a read never creates one)
    │   ├── PoisonFlood          most recent input invalid: the consumer stops instead of emptying a topic
    │   ├── AccessError          the broker refused an access-management request
    │   ├── ReadRefused          a read-only store reader refused a write (ClickHouse readonly = 1)
    │   └── door.Refused         a body or query past the parsing door's limits (core/door.py) -> 4xx
    └── Unavailable              transient: nothing was committed; retry later (with backoff) or answer 503
        ├── StoreUnavailable     the analytical store cannot be written right now
        ├── StoreLocked          an embedded store is held by another process (a running sink)
        ├── ProduceFailed        Kafka did not acknowledge a write in time
        ├── SpoolFull            Kafka down and the gateway's spool full -> 503 + Retry-After
        ├── RegistryError        the schema registry refused or could not be reached
        ├── LagUnavailable       the broker did not answer an offsets request
        ├── ServiceFailed        a child process exited or did not become ready
        └── LocalKafkaError      the local broker could not be fetched, formatted or started

Messages never hold secrets or personal data: they are safe to log and to return to a caller.
The ``techne`` CLI turns any of them into one line on stderr: exit 2 for :class:`Refused`,
exit 1 for :class:`Unavailable` (see ``techne.cli``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


class TechneError(Exception):
    """Base class of every error the bus raises on purpose."""


class Refused(TechneError):
    """Permanent: the same input or configuration is refused again; do not retry."""


class Unavailable(TechneError):
    """Transient: nothing was committed; retrying later may succeed."""


class ConfigError(Refused):
    """Configuration (settings, agreements, venues) is invalid; raised at startup."""


class ManifestError(ConfigError):
    """The schema manifest or a schema file is missing, malformed or inconsistent."""


@dataclass
class InvalidMessage(Refused):
    """A message cannot be processed and never will be: it belongs in a dead-letter topic.

    ``stage`` names the step that rejected it (``decode``, ``validate``, ...), ``reason`` is a
    short machine-readable code and ``detail`` a human explanation free of personal data.
    """

    stage: str
    reason: str
    detail: str = ""
    context: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.stage}/{self.reason}: {self.detail}"


class EventRejected(Refused):
    """The event does not match its schema; ``errors`` lists ``{field, message}`` (no values)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class PayloadRejected(Refused):
    """The delivery is not a payload this adapter understands (422)."""


class AuthRejected(Refused):
    """The delivery is not authenticated for this venue and source (401)."""


class SignatureRejected(AuthRejected):
    """Not signed by any active secret of the venue; ``code`` is a key of ``REASONS`` (our own codes)."""

    REASONS: ClassVar[dict[str, str]] = {
        "no_secret": "venue has no active webhook secret",
        "missing_headers": "missing required headers: webhook-id, webhook-timestamp, webhook-signature",
        "bad_timestamp": "webhook-timestamp is not a Unix time in seconds",
        "too_old": "message timestamp too old (5-minute tolerance)",
        "too_new": "message timestamp too new (5-minute tolerance)",
        "malformed": "malformed webhook-signature header: expected 'v1,<base64>' entries",
        "no_match": "no matching signature (wrong secret or body changed)",
    }

    def __init__(self, code: str) -> None:
        super().__init__(self.REASONS[code])
        self.code = code


class StoreMissing(Refused):
    """A store that should be read does not exist (a read never creates one)."""


class PoisonFlood(Refused):
    """Too large a share of recent messages was invalid: stop instead of emptying a topic into the DLQ."""


class AccessError(Refused):
    """The broker refused or failed an access-management request."""


class ReadRefused(Refused):
    """A statement sent through the read path (``sinks.reader``) was refused by the engine as a write."""


class StoreUnavailable(Unavailable):
    """The analytical store cannot be written right now (retry later; nothing was committed)."""


class StoreLocked(Unavailable):
    """An embedded store directory is held by another process (e.g. a running sink)."""


class ProduceFailed(Unavailable):
    """Kafka did not acknowledge a write in time; the caller must not report success."""


class SpoolFull(Unavailable):
    """The spool holds its maximum of entries: the caller answers 503 with ``Retry-After``."""


class RegistryError(Unavailable):
    """The registry refused a request or could not be reached."""

    def __init__(self, message: str, status: int = 0, error_code: int = 0) -> None:
        super().__init__(message)
        self.status, self.error_code = status, error_code


class LagUnavailable(Unavailable):
    """The broker did not answer an offsets request."""


class ServiceFailed(Unavailable):
    """A child process exited or did not become ready."""


class LocalKafkaError(Unavailable):
    """The local broker could not be fetched, formatted or started."""
