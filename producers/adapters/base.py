"""What a vendor adapter is: per-source authentication and a pure payload -> events mapping.

An :class:`Adapter` turns one vendor delivery (push) or one API page (poll) into canonical event
payloads — the same JSON a venue would post to ``/events`` — each with a *key* that names the
vendor object and its state (``order 123 closed``, ``ticket 9 scanned``). The event id is uuid5
of venue + source + key, so a delivery received twice, or an object polled twice, yields the
same events (idempotent), while a new state of the object is a new event.

Authentication is per source (:meth:`Adapter.authenticate`): HMAC where the vendor signs,
Basic or an API-key header (compared in constant time) where it does not, optionally an IP
allow-list. It returns a label saying *how* authenticity was checked; the label travels with
each event (Kafka header ``auth``). Reasons in :class:`AuthRejected` / :class:`PayloadRejected`
never hold a secret or an input value.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import SecretStr

from core.errors import AuthRejected as AuthRejected  # defined with the whole tree
from core.errors import PayloadRejected as PayloadRejected


@dataclass(frozen=True)
class SourceEvent:
    """One canonical event payload and the key of the vendor object state it comes from."""

    payload: dict[str, Any]
    key: str


@dataclass(frozen=True)
class OptIn:
    """One person's answer to one opt-in question, as the vendor carries it (mapped to consent
    events by :func:`producers.adapters.consent.consent_events`)."""

    question: str
    answer: Any
    customer: dict[str, Any]
    occurred_at: Any
    key: str  # the vendor object the answer belongs to (``order:4242001``, ``attendee:9``)


class Adapter:
    """Base class of push adapters; subclasses set ``name`` and implement the two methods."""

    name: ClassVar[str]
    media_types: ClassVar[tuple[str, ...]] = ("application/json",)
    description: ClassVar[str] = ""
    auth_doc: ClassVar[str] = ""

    def authenticate(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[SecretStr]) -> str:
        """Raise :class:`AuthRejected`, or return how authenticity was verified."""
        raise NotImplementedError

    def delivery_id(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """The vendor's id of this delivery, for replay protection (None: the body's digest)."""
        return None

    def events(self, body: bytes) -> list[SourceEvent]:
        """The canonical events of one delivery (may be empty: a notification we have no use for)."""
        raise NotImplementedError

    def opt_ins(self, body: bytes) -> list[OptIn]:
        """The opt-in answers one delivery carries (called after :meth:`events` accepted the body)."""
        return []


def equal(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def check_basic_or_api_key(headers: Mapping[str, str], secrets: Sequence[SecretStr], key_header: str) -> str:
    """Accept ``Authorization: Basic`` whose ``user:password`` is a secret, or ``key_header`` equal to one."""
    if not secrets:
        raise AuthRejected("no credentials configured for this source")
    auth = headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            pair = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise AuthRejected("malformed Basic credentials") from None
        if any(equal(pair, s.get_secret_value()) for s in secrets):
            return "basic"
        raise AuthRejected("Basic credentials do not match")
    key = headers.get(key_header)
    if key:
        if any(equal(key, s.get_secret_value()) for s in secrets):
            return f"api-key:{key_header}"
        raise AuthRejected("API key does not match")
    raise AuthRejected(f"missing Authorization: Basic or {key_header} header")


def ip_allowed(client: str | None, allowed: Sequence[str]) -> bool:
    """True if no allow-list is configured or ``client`` is inside one of its networks."""
    if not allowed:
        return True
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)


def dig(data: Any, *path: str | int, default: Any = None) -> Any:
    """``data[p0][p1]…`` or ``default`` when a step is missing."""
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return default
    return default if data is None else data


def listed(data: Any, *path: str | int) -> list[Any]:
    """The list at ``data[p0][p1]…`` (``[]`` when a step is missing or null); a value of another
    type raises :class:`PayloadRejected` naming the path, so that a payload of the wrong shape is
    a 422 (or a failed poll round), never an unhandled error."""
    found = dig(data, *path, default=[])
    if not isinstance(found, list):
        raise PayloadRejected(f"{'.'.join(str(p) for p in path) or '(body)'} must be a list")
    return found
