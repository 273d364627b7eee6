"""Standard Webhooks verification with several active secrets per venue.

Uses the spec's reference implementation (``standardwebhooks``): HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}``, constant-time comparison, 5-minute timestamp
tolerance. :func:`verify` raises :class:`SignatureRejected` with a reason safe to return to the
caller (it never contains a secret or a signature).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from techne.errors import TechneError


class SignatureRejected(TechneError):
    """The request is not signed by any active secret of the venue."""


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[SecretStr]) -> None:
    """Accept if any of ``secrets`` signed ``body``; otherwise raise :class:`SignatureRejected`."""
    if not secrets:
        raise SignatureRejected("venue has no active webhook secret")
    lowered = {k.lower(): v for k, v in headers.items()
               if k.lower() in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    reason = "no matching signature"
    for secret in secrets:
        try:
            Webhook(secret.get_secret_value()).verify(body, lowered, json_parse=False)
            return
        except WebhookVerificationError as exc:
            reason = str(exc)
            if "timestamp" in reason.lower() or "headers" in reason.lower():
                break  # the same for every secret
        except (ValueError, UnicodeDecodeError):
            reason = "malformed signature header or body encoding"
            break
    raise SignatureRejected(reason)


def sign(body: bytes, *, secret: str, msg_id: str, timestamp: float) -> dict[str, str]:
    """Headers a sender attaches (used by the demo's venue simulators and by tests)."""
    from datetime import UTC, datetime

    ts = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=ts, data=body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(timestamp)), "webhook-signature": signature}
