"""Keyed digests of personal identifiers (pure functions).

Everything that stands in for a person is an HMAC-SHA256 under a secret key and a *domain*
(a label that separates uses): never a plain hash, which anyone can recompute from a guessed
e-mail address. Two domains never yield the same value for the same person.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import phonenumbers

DEFAULT_PHONE_REGION = "FR"


def normalize_email(value: str) -> str:
    """The one normalization of an e-mail address: trimmed and lower-cased."""
    return value.strip().lower()


def normalize_phone(value: str | None, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """E.164 (``+33612345678``; numbers without a country code read in ``region``), or None when
    ``value`` is not a valid phone number."""
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
