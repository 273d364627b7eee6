"""Our ODRL 2.2 profile: identifiers, vocabulary, and the reading of policies written with it.

The profile (``PROFILE``, published in ``docs/dataspace.md``) adds one thing to ODRL's core:

* ``techne:field`` — a left operand whose value is the set of fields of a shared record beyond
  the envelope (:data:`ENVELOPE`); ``isPartOf`` a list means "only these fields may be received";

and fixes how three core terms are read by the bus:

* ``purpose`` (``isAnyOf`` a list drawn from :data:`PURPOSES`): a use is for a purpose when the
  person behind the event holds a valid consent for it naming the assignee (granted, not
  withdrawn, not expired) — consent is default-deny;
* ``dateTime`` (``gteq`` / ``lteq`` an ``xsd:date``): compared with the event's UTC date;
* the ``delete`` duty's ``elapsedTime`` (``lteq`` an ``xsd:duration`` of whole days): the
  retention, counted from the event's UTC date (never later than its receipt by the partner).

Policy-level properties carry what routing needs and ODRL has no term for:
``techne:agreement`` (the agreement id the policy belongs to), ``techne:legalBasis``,
``techne:pseudonymDomain`` and ``techne:minCellSize``.

Identifiers are URNs: ``urn:techne:venue:<id>`` (assigner), ``urn:techne:partner:<id>``
(assignee), ``urn:techne:asset:<venue>:<event type>`` (target: the events of that type from that
venue). :func:`term` reads a term however a document spells it (``purpose``, ``odrl:purpose``,
the full IRI, ``{"@id": ...}``); :func:`literal` reads a value plain or as ``{"@value": ...}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from schemas.models import Purpose
from schemas.sharing import ALWAYS

PROFILE = "https://techne.example/odrl/profile/v1"
NS = PROFILE + "#"
CONTEXT_URL = PROFILE + "/context.jsonld"
ODRL_NS = "http://www.w3.org/ns/odrl/2/"
ODRL_CONTEXT_URL = "http://www.w3.org/ns/odrl.jsonld"
DSP_CONTEXT_URL = "https://w3id.org/dspace/2025/1/context.jsonld"
XSD = "http://www.w3.org/2001/XMLSchema#"
HERE = Path(__file__).parent
CONTEXT: dict[str, Any] = json.loads((HERE / "profile-context.jsonld").read_text(encoding="utf-8"))
"""The profile's JSON-LD context (the document served at :data:`CONTEXT_URL`)."""
SHAPES = HERE / "profile-shapes.ttl"
"""SHACL shapes of the profile (Turtle): purpose required, a delete duty with a duration, date bounds."""

PURPOSES = tuple(p.value for p in Purpose if p is not Purpose.AUDIENCE_MEASUREMENT)
ENVELOPE = ALWAYS
"""Fields every shared record carries whatever the field list."""
FIELD = "techne:field"
KNOWN_LEFT = ("purpose", "dateTime", FIELD)
_URN = re.compile(r"^urn:techne:(venue|partner|asset|agreement):(.+)$")
_DAYS = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


class PolicyRefused(ConfigError):
    """A policy or contract the bus cannot enforce; ``reasons`` says why, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def venue_iri(venue: str) -> str:
    return f"urn:techne:venue:{venue}"


def partner_iri(partner: str) -> str:
    return f"urn:techne:partner:{partner}"


def asset_iri(venue: str, event_type: str) -> str:
    return f"urn:techne:asset:{venue}:{event_type}"


def policy_iri(kind: str, agreement_id: str, venue: str, event_type: str) -> str:
    """``urn:techne:<kind>:<agreement>:<venue>:<event type>`` (kind: agreement or offer)."""
    return f"urn:techne:{kind}:{agreement_id}:{venue}:{event_type}"


def parse_urn(value: str) -> tuple[str, str] | None:
    """``("venue", "chaillot")`` for ``urn:techne:venue:chaillot``; None for anything else."""
    match = _URN.match(value)
    return (match.group(1), match.group(2)) if match else None


def term(value: Any) -> str:
    """An ODRL or profile term as a short name: ``purpose``, ``techne:field``, else the IRI as is."""
    if isinstance(value, dict):
        value = value.get("@id", value.get("@value", ""))
    text = str(value)
    for prefix in (ODRL_NS, "odrl:"):
        if text.startswith(prefix):
            return text[len(prefix):]
    if text.startswith(NS):
        return "techne:" + text[len(NS):]
    return text


def literal(value: Any) -> Any:
    """A JSON-LD value without its wrapping (``{"@value": "P30D", "@type": ...}`` -> ``"P30D"``)."""
    if isinstance(value, dict) and "@value" in value:
        return value["@value"]
    if isinstance(value, dict) and "@id" in value:
        return value["@id"]
    return value


def values(value: Any) -> list[Any]:
    """A right operand as a list of plain values (a single value, a list, or a ``@list``)."""
    if isinstance(value, dict) and "@list" in value:
        value = value["@list"]
    items = value if isinstance(value, list) else [value]
    return [literal(v) for v in items]


def days_of(duration: str) -> tuple[int, str | None]:
    """Whole days of an ISO 8601 date duration, and a note when it had to be approximated
    (a year counted as 365 days, a month as 30). Raises ValueError for anything else."""
    match = _DAYS.match(duration.strip()) if isinstance(duration, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"retention {duration!r} is not an ISO 8601 duration in days (e.g. P395D)")
    years, months, weeks, days = (int(g or 0) for g in match.groups())
    total = years * 365 + months * 30 + weeks * 7 + days
    note = None
    if years or months:
        note = f"retention {duration} counted as {total} days (a year as 365 days, a month as 30)"
    return total, note
