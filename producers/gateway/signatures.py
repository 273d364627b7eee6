"""Standard Webhooks verification with several active secrets per venue.

Uses the spec's reference implementation (``standardwebhooks``) for the HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}`` and its constant-time comparison. The checks that
decide *why* a request is refused (headers present, timestamp well-formed and within the
5-minute tolerance, signature header shaped ``v1,<base64>``) are ours, so that the reason a caller
gets is one of our stable codes (:data:`REASONS`) whatever the library's wording.
:func:`verify` raises :class:`SignatureRejected`; its message never contains a secret or a
signature.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping, Sequence

from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.errors import SignatureRejected as SignatureRejected  # defined with the whole tree

TOLERANCE_S = 300
REASONS = SignatureRejected.REASONS



def _well_formed(signature_header: str) -> bool:
    """Whether one entry of the space-delimited list is ``v1,<base64>`` (the others, other schemes
    or entries we cannot read, are left to the library, which tries every one)."""
    for entry in signature_header.split():
        version, _, value = entry.partition(",")
        if version == "v1":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            return True
    return False


def check_envelope(headers: Mapping[str, str], now: float | None = None) -> None:
    """Refuse, with our own reason code, a request whose signature headers cannot be right."""
    wid, ts, sig = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not wid or not ts or not sig:
        raise SignatureRejected("missing_headers")
    try:
        stamp = int(ts)
    except ValueError:
        raise SignatureRejected("bad_timestamp") from None
    now = time.time() if now is None else now
    if stamp < now - TOLERANCE_S:
        raise SignatureRejected("too_old")
    if stamp > now + TOLERANCE_S:
        raise SignatureRejected("too_new")
    if not _well_formed(sig):
        raise SignatureRejected("malformed")


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[SecretStr]) -> None:
    """Accept if any of ``secrets`` signed ``body``; otherwise raise :class:`SignatureRejected`."""
    if not secrets:
        raise SignatureRejected("no_secret")
    lowered = {k.lower(): v for k, v in headers.items()
               if k.lower() in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    check_envelope(lowered)
    for secret in secrets:
        try:
            Webhook(secret.get_secret_value()).verify(body, lowered, json_parse=False)
            return
        except (WebhookVerificationError, ValueError, UnicodeDecodeError):
            continue
    raise SignatureRejected("no_match")


def sign(body: bytes, *, secret: str, msg_id: str, timestamp: float) -> dict[str, str]:
    """Headers a sender attaches (used by the demo's venue simulators and by tests)."""
    from datetime import UTC, datetime

    ts = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=ts, data=body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(timestamp)), "webhook-signature": signature}
