"""HelloAsso notifications (push): signed with ``x-ha-signature``, hex HMAC-SHA256 of the body.

HelloAsso (per its public API v5 docs) posts JSON ``{"eventType": "Order" | "Payment" | "Form",
"data": {...}, "metadata": {...}}`` to the organization's notification URL, signed with the
organization's signature key. Mapping:

* ``Order`` -> ``ticket.order_paid`` (order id, total amount in cents, payer as the customer,
  ``payments[0]`` as payment reference and means, channel ``web``); key ``order:<id>:paid``;
* ``Payment`` with ``state`` ``Refunded`` -> ``ticket.order_refunded``; key ``payment:<id>:refunded``;
* other notifications (``Form``, authorized payments already covered by their order) carry
  nothing the catalogue records: answered 200 with no event.

Opt-ins (:meth:`HelloAsso.opt_ins`): the answers to the form's custom fields
(``items[].customFields[] = {name, type, answer}``), the payer being the person; a question
answered on several items (one per ticket) counts once, with its first answer. Which question
means which consent is the venue's mapping (producers/adapters/consent.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import SecretStr

from producers.adapters.base import Adapter, AuthRejected, OptIn, PayloadRejected, SourceEvent, dig, listed
from schemas.customer import country_code

SIGNATURE_HEADER = "x-ha-signature"
MEANS = {"Card": "card", "Sepa": "direct_debit", "Check": "cheque", "Cash": "cash", "BankTransfer": "transfer"}


class HelloAsso(Adapter):
    name = "helloasso"
    description = "HelloAsso notifications (Order, Payment) signed with x-ha-signature."
    auth_doc = "x-ha-signature: hex HMAC-SHA256 of the raw body with the organization's signature key."

    def authenticate(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[SecretStr]) -> str:
        if not secrets:
            raise AuthRejected("no signature key configured for this source")
        given = headers.get(SIGNATURE_HEADER, "").strip().lower()
        if not given:
            raise AuthRejected(f"missing {SIGNATURE_HEADER} header")
        for secret in secrets:
            expected = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, given):
                return f"hmac-sha256:{SIGNATURE_HEADER}"
        raise AuthRejected("signature does not match")

    def events(self, body: bytes) -> list[SourceEvent]:
        try:
            note = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PayloadRejected("body is not JSON") from None
        if not isinstance(note, dict) or not isinstance(note.get("data"), dict):
            raise PayloadRejected("expected {eventType, data}")
        kind, data = note.get("eventType"), note["data"]
        if kind == "Order":
            return [_order_paid(data)]
        if kind == "Payment" and data.get("state") == "Refunded":
            return [_refunded(data)]
        return []

    def opt_ins(self, body: bytes) -> list[OptIn]:
        note = json.loads(body)
        data = note.get("data") or {}
        if note.get("eventType") != "Order":
            return []
        customer, seen, out = _customer(dig(data, "payer", default={})), set(), []
        for item in listed(data, "items"):
            for field in listed(item, "customFields"):
                name = str(dig(field, "name", default=""))
                if name and name not in seen:
                    seen.add(name)
                    out.append(OptIn(name, dig(field, "answer", default=""), customer, dig(data, "date"),
                                     f"order:{dig(data, 'id', default='')}"))
        return out


def _customer(payer: Any) -> dict[str, Any]:
    customer = {"email": dig(payer, "email"), "first_name": dig(payer, "firstName"),
                "last_name": dig(payer, "lastName"), "postal_code": dig(payer, "zipCode"),
                "city": dig(payer, "city")}
    country = dig(payer, "country")  # alpha-3 ("FRA") in HelloAsso's API
    if isinstance(country, str) and (code := country_code(country)):
        customer["country_code"] = code
    return {k: v for k, v in customer.items() if v}


def _order_paid(data: dict[str, Any]) -> SourceEvent:
    order_id = str(dig(data, "id", default=""))
    payload = {"type": "ticket.order_paid", "occurred_at": dig(data, "date"), "source_system": "helloasso",
               "customer": _customer(dig(data, "payer", default={})), "order_id": order_id,
               "amount_minor": dig(data, "amount", "total"), "currency": "EUR", "channel": "web",
               "payment_method": MEANS.get(str(dig(data, "payments", 0, "paymentMeans", default="")), "other")}
    payment = dig(data, "payments", 0, "id")
    if payment is not None:
        payload["payment_ref"] = str(payment)
    return SourceEvent(payload, f"order:{order_id}:paid")


def _refunded(data: dict[str, Any]) -> SourceEvent:
    payment_id = str(dig(data, "id", default=""))
    payload = {"type": "ticket.order_refunded", "occurred_at": dig(data, "date"), "source_system": "helloasso",
               "customer": _customer(dig(data, "payer", default={})),
               "order_id": str(dig(data, "order", "id", default="")), "amount_minor": dig(data, "amount"),
               "currency": "EUR", "refund_method": "original_payment", "reason": "other"}
    return SourceEvent(payload, f"payment:{payment_id}:refunded")
