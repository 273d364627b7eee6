"""Normalization of identifiers and generalization of quasi-identifiers (pure).

* e-mail: trimmed, lower-cased; phone: E.164 through ``phonenumbers`` (French numbers by
  default) — normalized *before* keyed hashing, so one person gets one pseudonym;
* postal code -> département (``75``, ``2A``/``2B`` for Corsica, ``971``… overseas);
* birth date -> age band on the event date (``18-24``, ``25-34``, …);
* IP address -> network prefix (IPv4 /24, IPv6 /48) or nothing;
* user agent -> device class (``mobile``, ``tablet``, ``desktop``, ``bot``, ``other``);
* URL -> its path only (no scheme, host, query string or fragment, where identifiers hide),
  or its host only (a referrer);
* city -> the city name, trimmed (the finest place exempt measurement keeps); country -> an
  ISO 3166-1 alpha-2 code, upper-cased.

Every function returns ``None`` for input it cannot interpret: unknown values are dropped,
never passed through.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from urllib.parse import urlsplit

AGE_BANDS = ((0, 17, "0-17"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 49, "35-49"), (50, 64, "50-64"),
             (65, 200, "65+"))
_FR_POSTCODE = re.compile(r"^\d{5}$")


def departement(postal_code: str | None) -> str | None:
    """French département of a postal code (``69003`` -> ``69``, ``20090`` -> ``2A``)."""
    if not postal_code:
        return None
    code = postal_code.strip().replace(" ", "")
    if not _FR_POSTCODE.match(code):
        return None
    if code.startswith("97") or code.startswith("98"):
        return code[:3]
    if code.startswith("20"):
        return "2A" if int(code[:3]) < 202 else "2B"
    if code.startswith("00"):
        return None
    return code[:2]


def age_band(birth: date | None, on: date) -> str | None:
    if birth is None or birth > on:
        return None
    age = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    for low, high, label in AGE_BANDS:
        if low <= age <= high:
            return label
    return None


def ip_prefix(value: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of an address, as text; None if not an address."""
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_BOT = re.compile(r"bot|crawl|spider|slurp|curl|wget|python-requests|headless", re.I)
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|android(?!.*mobile)", re.I)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini", re.I)
_DESKTOP = re.compile(r"windows nt|macintosh|x11|linux x86_64|cros", re.I)


def device_class(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    for pattern, label in ((_BOT, "bot"), (_TABLET, "tablet"), (_MOBILE, "mobile"), (_DESKTOP, "desktop")):
        if pattern.search(user_agent):
            return label
    return "other"


_PATH_MAX = 200
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def url_path(url: str | None) -> str | None:
    """The path of ``url`` (``/saison/tosca``), at most 200 characters; None if not a URL."""
    if not url:
        return None
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return None
    return (path or "/")[:_PATH_MAX]


def url_host(url: str | None) -> str | None:
    """The host of ``url``, lower-cased; None if it has none."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host or None


def city(value: str | None) -> str | None:
    """A city name, trimmed (at most 80 characters); None if empty."""
    text = (value or "").strip()
    return text[:80] or None


def country(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 country code, upper-cased; None otherwise."""
    text = (value or "").strip()
    return text.upper() if _COUNTRY.match(text) else None
