"""The canonical JSON event, Standard Webhooks signed, as a registry source (``canonical``).

Same payload and signature as ``POST /v1/venues/{venue_id}/events``; listed in the registry so
that every door is described the same way. The venue's Standard Webhooks secrets are those of
``TECHNE_VENUE_SECRETS`` (the route passes them); the ``webhook-id`` names the delivery.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pydantic import SecretStr

from producers.adapters.base import Adapter, AuthRejected, PayloadRejected, SourceEvent


class Canonical(Adapter):
    name = "canonical"
    description = "One canonical event (the catalogue's JSON), Standard Webhooks signed."
    auth_doc = "webhook-id, webhook-timestamp, webhook-signature (Standard Webhooks) with the venue's secret."

    def authenticate(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[SecretStr]) -> str:
        from producers.gateway.signatures import SignatureRejected, verify  # the gateway imports this module

        try:
            verify(body, headers, secrets)
        except SignatureRejected as exc:
            raise AuthRejected(str(exc)) from None
        return "standard-webhooks"

    def delivery_id(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        return headers.get("webhook-id")

    def events(self, body: bytes) -> list[SourceEvent]:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PayloadRejected("body is not JSON") from None
        if not isinstance(payload, dict):
            raise PayloadRejected("expected one JSON event object")
        return [SourceEvent(payload, "")]
