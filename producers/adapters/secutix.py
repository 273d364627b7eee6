"""SecuTix 360 push notifications: closed orders and access-control scans.

SecuTix does not sign its notifications: it authenticates with HTTP Basic or an API-key header
(``x-api-key``) configured on its side, or not at all — so this source requires one of the two
(compared in constant time) and may add an IP allow-list (``TECHNE_SOURCE_ALLOWED_IPS``).

Payload shapes follow the SecuTix 360 notification docs as we know them (order-closed and
access-control notifications, JSON); see ``tests/fixtures/vendors/secutix_*.json`` and check
them against a real notification when onboarding a SecuTix venue. Mapping:

* ``ORDER_CLOSED`` -> one ``ticket.order_placed`` per performance of the order (items grouped by
  performance; amount in minor units); key ``order:<orderId>:<performanceId>:closed``;
* ``ACCESS_CONTROL`` -> one ``attendance.ticket_scanned`` per scan; key
  ``scan:<barcode>:<scanDate>:<result>``;
* ``ORDER_REFUNDED`` (tickets of a closed order refunded: ``order.refundDate``, the refunded
  ``items``) -> one ``ticket.order_refunded`` per performance, same order id (the partner's
  current view of the order turns to refunded); key ``order:<orderId>:<performanceId>:refunded``;
* ``CONTACT_UPDATED`` -> no event of its own: it carries the contact's opt-ins.

Opt-ins (:meth:`SecuTix.opt_ins`): the contact's ``optIns`` (SecuTix's own newsletters and the
"promoter opt-ins" it collects on behalf of partners: ``{code, label, value, date}``), on a closed
order's contact or a ``CONTACT_UPDATED``; the question is the opt-in ``code``; a revoked opt-in
arrives as ``value: false`` (the withdrawal path). Mapped by the venue's configuration
(producers/adapters/consent.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import SecretStr

from producers.adapters.base import (
    Adapter,
    OptIn,
    PayloadRejected,
    SourceEvent,
    check_basic_or_api_key,
    dig,
    listed,
)

CHANNELS = {"INTERNET": "web", "BOX_OFFICE": "box_office", "CALL_CENTER": "phone", "RESELLER": "reseller",
            "MOBILE": "mobile_app", "GROUP": "group_sales"}
SCAN_RESULTS = {"ACCEPTED": "admitted", "ALREADY_USED": "already_scanned", "UNKNOWN": "invalid",
                "INVALID": "invalid", "WRONG_PERFORMANCE": "wrong_performance", "EXIT": "exited"}
TARIFFS = {"FULL": "plein", "REDUCED": "reduit", "YOUTH": "jeune", "SUBSCRIBER": "abonne", "INVITATION": "invitation",
           "STUDENT": "etudiant", "SENIOR": "senior", "GROUP": "groupe", "SCHOOL": "scolaire"}


class SecuTix(Adapter):
    name = "secutix"
    description = "SecuTix 360 notifications: ORDER_CLOSED (ticket orders) and ACCESS_CONTROL (scans)."
    auth_doc = "Authorization: Basic (user:password) or x-api-key, as configured in SecuTix; optional IP allow-list."

    def authenticate(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[SecretStr]) -> str:
        return check_basic_or_api_key(headers, secrets, "x-api-key")

    def delivery_id(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-secutix-notification-id")

    def events(self, body: bytes) -> list[SourceEvent]:
        try:
            note = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PayloadRejected("body is not JSON") from None
        kind = dig(note, "notificationType")
        if kind == "ORDER_CLOSED":
            return _order_closed(dig(note, "order", default={}))
        if kind == "ACCESS_CONTROL":
            return [_scan(s) for s in listed(note, "scans")]
        if kind == "ORDER_REFUNDED":
            return _order_refunded(dig(note, "order", default={}))
        if kind == "CONTACT_UPDATED":
            if not isinstance(dig(note, "contact"), dict):
                raise PayloadRejected("CONTACT_UPDATED without a contact")
            return []
        raise PayloadRejected("notificationType must be ORDER_CLOSED, ORDER_REFUNDED, ACCESS_CONTROL or "
                              "CONTACT_UPDATED")

    def opt_ins(self, body: bytes) -> list[OptIn]:
        note = json.loads(body)
        kind = dig(note, "notificationType")
        if kind == "ORDER_CLOSED":
            contact, key, at = dig(note, "order", "contact", default={}), f"order:{dig(note, 'order', 'orderId')}", \
                dig(note, "order", "closingDate")
        elif kind == "CONTACT_UPDATED":
            contact = dig(note, "contact", default={})
            key, at = f"contact:{dig(contact, 'contactNumber', default='')}", dig(contact, "modificationDate")
        else:
            return []
        customer = _contact(contact)
        return [OptIn(str(dig(o, "code", default="")), dig(o, "value", default=""), customer,
                      dig(o, "date") or at, f"{key}:{dig(o, 'date') or at}")
                for o in listed(contact, "optIns") if dig(o, "code")]


def _text(value: Any) -> Any:
    """Vendor ids arrive as numbers or strings; the catalogue holds them as strings."""
    return str(value) if isinstance(value, int | float) else value


def _minor(amount: Any) -> Any:
    try:
        return int((Decimal(str(amount)) * 100).quantize(Decimal(1)))
    except (InvalidOperation, ValueError):
        return amount  # left for schema validation to reject, with its field path


def _contact(contact: Any) -> dict[str, Any]:
    return {k: v for k, v in {
        "customer_id": str(dig(contact, "contactNumber", default="")) or None, "email": dig(contact, "email"),
        "postal_code": dig(contact, "zipCode"), "country_code": dig(contact, "countryCode")}.items() if v}


def _total(items: list[dict[str, Any]]) -> Any:
    """Sum of the items' prices in minor units; a price that is not a number is left for schema
    validation to reject (422 naming ``amount_minor``), never an unhandled error."""
    try:
        return _minor(sum(Decimal(str(dig(i, "price", default=0))) for i in items))
    except InvalidOperation:
        return "not a number"


def _order_closed(order: dict[str, Any]) -> list[SourceEvent]:
    customer = _contact(dig(order, "contact", default={}))
    by_performance: dict[str, list[dict[str, Any]]] = {}
    for item in listed(order, "items"):
        by_performance.setdefault(str(dig(item, "performanceId", default="")), []).append(item)
    order_id = str(dig(order, "orderId", default=""))
    out = []
    for performance_id, items in by_performance.items():
        first = items[0]
        tariff = TARIFFS.get(str(dig(first, "tariffCode", default="")).upper(), "autre")
        payload = {"type": "ticket.order_placed", "occurred_at": dig(order, "closingDate"),
                   "source_system": "secutix", "customer": customer, "order_id": order_id,
                   "production": dig(first, "productName"), "production_id": _text(dig(first, "productId")),
                   "performance_id": performance_id, "performance_at": dig(first, "performanceDate"),
                   "hall": dig(first, "hallName"), "discipline": str(dig(first, "genre", default="autre")).lower(),
                   "tariff": tariff, "channel": CHANNELS.get(str(dig(order, "salesChannel", default="")), "other"),
                   "quantity": len(items), "amount_minor": _total(items),
                   "currency": dig(order, "currency", default="EUR"),
                   "is_invitation": tariff == "invitation"}
        payload = {k: v for k, v in payload.items() if v is not None}
        out.append(SourceEvent(payload, f"order:{order_id}:{performance_id}:closed"))
    if not out:
        raise PayloadRejected("order has no items")
    return out


def _order_refunded(order: dict[str, Any]) -> list[SourceEvent]:
    customer = _contact(dig(order, "contact", default={}))
    by_performance: dict[str, list[dict[str, Any]]] = {}
    for item in listed(order, "items"):
        by_performance.setdefault(str(dig(item, "performanceId", default="")), []).append(item)
    order_id = str(dig(order, "orderId", default=""))
    out = []
    for performance_id, items in by_performance.items():
        payload = {"type": "ticket.order_refunded", "occurred_at": dig(order, "refundDate"), "source_system": "secutix",
                   "customer": customer, "order_id": order_id,
                   "ticket_ids": [str(dig(i, "ticketId", default="")) for i in items if dig(i, "ticketId")],
                   "amount_minor": _total(items), "currency": dig(order, "currency", default="EUR"),
                   "refund_method": "original_payment", "reason": "customer_request"}
        out.append(SourceEvent(payload, f"order:{order_id}:{performance_id}:refunded"))
    if not out:
        raise PayloadRejected("refund has no items")
    return out


def _scan(scan: dict[str, Any]) -> SourceEvent:
    result = SCAN_RESULTS.get(str(dig(scan, "result", default="")).upper(), "invalid")
    barcode, at = str(dig(scan, "barcode", default="")), dig(scan, "scanDate")
    payload = {"type": "attendance.ticket_scanned", "occurred_at": at, "source_system": "secutix",
               "barcode": barcode, "ticket_id": _text(dig(scan, "ticketId")),
               "performance_id": _text(dig(scan, "performanceId")),
               "gate": dig(scan, "gate"), "device_id": dig(scan, "deviceId"), "result": result}
    return SourceEvent({k: v for k, v in payload.items() if v is not None}, f"scan:{barcode}:{at}:{result}")
