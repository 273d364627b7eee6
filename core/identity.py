"""Keyed digests of personal identifiers (pure functions).

Everything that stands in for a person is an HMAC-SHA256 under a secret key and a *domain*
(a label that separates uses): never a plain hash, which anyone can recompute from a guessed
e-mail address. Two domains never yield the same value for the same person.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Mapping
from typing import Any

import phonenumbers

DEFAULT_PHONE_REGION = "FR"

OVERSEAS_PREFIXES = {"590": "GP", "690": "GP", "691": "GP", "596": "MQ", "696": "MQ", "697": "MQ",
                     "594": "GF", "694": "GF", "262": "RE", "692": "RE", "693": "RE", "269": "YT", "639": "YT"}
"""French numbers in national form that ring overseas (ARCEP's plan: ``0590 12 34 56`` is in
Guadeloupe, ``+590 590 12 34 56``): the libphonenumber region of each 3-digit prefix after the 0.
libphonenumber's FR region refuses some of them and wrongly reads others as ``+33``."""


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label  # not punycode after all: kept as written
    if decoded.isascii() or decoded.encode("punycode").decode("ascii") != label[4:]:
        return label
    return unicodedata.normalize("NFC", decoded).lower()


def normalize_email(value: str) -> str:
    """The one normalization of an e-mail address: trimmed, accents composed (NFC), lower-cased,
    and a domain written in punycode (``xn--thtre-4qa2c.fr``) in its Unicode form (``théâtre.fr``):
    however a tool writes one address, it is one identifier."""
    text = unicodedata.normalize("NFC", value.strip()).lower()
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    return f"{local}@{'.'.join(_unicode_label(label) for label in domain.split('.'))}"


def normalize_phone(value: str | None, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """E.164 (``+33612345678``; numbers without a country code read in ``region``, and for France
    overseas too: ``0590 12 34 56`` is ``+590590123456``), or None when ``value`` is not a valid
    phone number."""
    if not value:
        return None
    digits = "".join(c for c in value if c.isdigit())
    regions = [region]
    if region == "FR" and not value.lstrip().startswith(("+", "00")) and len(digits) == 10 and digits[0] == "0":
        regions[:0] = [OVERSEAS_PREFIXES[digits[1:4]]] if digits[1:4] in OVERSEAS_PREFIXES else []
    for where in regions:
        try:
            number = phonenumbers.parse(value, where)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def keyed_digest(key: bytes, domain: str, value: str) -> str:
    """Hex HMAC-SHA256 of ``value`` under ``key``, separated by ``domain``."""
    return hmac.digest(key, f"{domain}\x1f{value}".encode(), "sha256").hex()  # one-shot C path


def subject_identifier(subject: Mapping[str, Any], venue_id: str) -> str | None:
    """The identifier that names one person: the normalized e-mail if any, else the phone
    number (E.164, as normalized at ingestion), else the venue's customer id (only meaningful
    within that venue). ``None`` if there is none of them."""
    email = subject.get("email")
    if email:
        return "email:" + normalize_email(str(email))
    phone = subject.get("phone")
    if phone:
        return "phone:" + str(phone).replace(" ", "")
    customer_id = subject.get("customer_id")
    if customer_id:
        return f"customer:{venue_id}:{customer_id}"
    return None


ANONYMOUS = "anonymous"
"""The subject reference of events without any identifier."""


def subject_ref(key: bytes, venue_id: str, subject: Mapping[str, Any]) -> str:
    """Internal reference of a person at a venue: the raw-topic key and the consent-ledger key.

    Consent is given to a venue, so the venue is part of the reference. Events without any
    identifier get the reference ``anonymous`` (they can never match a consent).
    """
    ident = subject_identifier(subject, venue_id)
    if ident is None:
        return ANONYMOUS
    return keyed_digest(key, "subject-ref:" + venue_id, ident)
