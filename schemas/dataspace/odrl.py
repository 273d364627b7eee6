"""Agreements as ODRL 2.2 ``Agreement`` policies (profile :mod:`schemas.dataspace.profile`), and back.

:func:`to_policies` gives one policy per provider venue and event type of an agreement (ODRL and
the Dataspace Protocol give a policy one assigner and one target): assigner the venue, assignee
the partner, target the asset, one ``use`` permission constrained by purpose, validity dates and
the field list, with a ``delete`` duty for the retention. :func:`document` is the JSON-LD export
of a list of agreements (``@graph``).

:func:`from_document` reads policies (of an ODRL document, a DSP agreement message or catalogue:
:func:`policies_of`; each by :func:`schemas.dataspace.policy.read_policy`: refused with
every reason, or kept with what is lost) and groups them by ``techne:agreement`` (else each is its
own agreement) into validated agreements (:func:`build`).

:func:`evaluate` is the profile's decision for one event: permitted when the policy's assigner,
target and assignee are the event's venue, asset and partner, the event's UTC date is within the
bounds, and one listed purpose is consented (``Request.consented``) — or the asset describes no
person (ad spend: :data:`schemas.kinds.KIND_OF_TYPE`), which the agreement alone covers, for its
first purpose; it names the fields the partner may then receive. It reads the JSON policy, not
the agreement it came from, so tests can check that the exported policy says what the routing does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from schemas.agreements import Agreement
from schemas.dataspace.policy import Policy, read_policy
from schemas.dataspace.profile import (
    CONTEXT_URL,
    FIELD,
    ODRL_CONTEXT_URL,
    PROFILE,
    PolicyRefused,
    asset_iri,
    partner_iri,
    policy_iri,
    venue_iri,
)
from schemas.kinds import KIND_OF_TYPE
from schemas.sharing import PROJECTABLE_BY_TYPE

__all__ = ["Imported", "Policy", "PolicyRefused", "Request", "Verdict", "build", "document", "evaluate",
           "from_document", "policies_of", "read_policy", "to_policies"]


def _date(value: date) -> dict[str, str]:
    return {"@value": value.isoformat(), "@type": "xsd:date"}


def to_policies(agreement: Agreement, kind: str = "Agreement") -> list[dict[str, Any]]:
    """The agreement as ODRL policies of type ``kind`` (``Agreement``, or ``Offer`` for a catalogue:
    an offer carries no target, its dataset is the target)."""
    out = []
    for venue in agreement.provider_venues:
        for event_type in agreement.event_types:
            fields = sorted(set(agreement.allowed_fields) & PROJECTABLE_BY_TYPE[event_type])
            policy: dict[str, Any] = {
                "@id": policy_iri(kind.lower(), agreement.id, venue, event_type),
                "@type": kind,
                "profile": PROFILE,
                "techne:agreement": agreement.id,
                "assigner": venue_iri(venue),
                "assignee": partner_iri(agreement.partner),
            }
            if kind == "Agreement":
                policy["target"] = asset_iri(venue, event_type)
            policy.update({
                "techne:legalBasis": agreement.legal_basis,
                "techne:pseudonymDomain": agreement.domain,
                "techne:minCellSize": agreement.min_cell_size,
                "permission": [{
                    "action": "use",
                    "constraint": [
                        {"leftOperand": "purpose", "operator": "isAnyOf",
                         "rightOperand": [p.value for p in agreement.purposes]},
                        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": _date(agreement.valid_from)},
                        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": _date(agreement.valid_until)},
                        {"leftOperand": FIELD, "operator": "isPartOf", "rightOperand": fields},
                    ],
                    "duty": [{"action": "delete", "constraint": [
                        {"leftOperand": "elapsedTime", "operator": "lteq",
                         "rightOperand": {"@value": f"P{agreement.retention_days}D", "@type": "xsd:duration"}}]}],
                }],
            })
            out.append(policy)
    return out


def document(agreements: Iterable[Agreement]) -> dict[str, Any]:
    """Every agreement's policies as one JSON-LD document."""
    return {"@context": [ODRL_CONTEXT_URL, CONTEXT_URL],
            "@graph": [p for a in agreements for p in to_policies(a)]}


@dataclass(frozen=True)
class Imported:
    """An agreement read from foreign terms, and what could not be kept."""

    agreement: Agreement
    lost: tuple[str, ...]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_.-]+", "-", text.lower().split(":")[-1]).strip("-._")[:80]
    return slug if len(slug) >= 2 else f"imported-{slug or 'agreement'}"


def build(policies: list[Policy], agreement_id: str) -> Imported:
    """One agreement from the policies of one group (same partner, purposes, bounds, retention)."""
    refusals: list[str] = []
    first = policies[0]
    lost = [note for p in policies for note in p.lost]
    for name in ("partner", "purposes", "valid_from", "valid_until", "retention_days", "legal_basis",
                 "pseudonym_domain", "min_cell_size"):
        seen = {repr(getattr(p, name)) for p in policies}
        if len(seen) > 1:
            refusals.append(f"{agreement_id}: its policies differ in {name} ({', '.join(sorted(seen))}); "
                            "one agreement must have one")
    venues = list(dict.fromkeys(p.venue for p in policies if p.venue))
    types = list(dict.fromkeys(p.event_type for p in policies if p.event_type))
    pairs = {(p.venue, p.event_type) for p in policies}
    missing = sorted(f"{v} × {t}" for v in venues for t in types if (v, t) not in pairs)
    if missing:
        refusals.append(f"{agreement_id}: the policies do not cover every venue × event type ({', '.join(missing)} "
                        "missing): split it into several agreements")
    if refusals:
        raise PolicyRefused(refusals)
    per_type: dict[str, set[str]] = {}
    for p in policies:  # one field list per event type: a venue's narrower list wins for all
        assert p.event_type is not None
        fields = set(p.fields or [])
        if p.event_type in per_type and per_type[p.event_type] != fields:
            lost.append(f"{agreement_id}: venues give {p.event_type} different field lists; kept the common fields")
            fields &= per_type[p.event_type]
        per_type[p.event_type] = fields if p.event_type not in per_type else per_type[p.event_type] & fields
    allowed = set().union(*per_type.values()) if per_type else set()
    for event_type, fields in per_type.items():
        extra = (allowed & PROJECTABLE_BY_TYPE[event_type]) - fields
        if extra:
            lost.append(f"{agreement_id}: {sorted(extra)} allowed for another event type but not for {event_type}: "
                        "left out (an agreement has one field list)")
            allowed -= extra
    data: dict[str, Any] = {
        "id": agreement_id, "provider_venues": venues, "partner": first.partner, "purposes": first.purposes,
        "event_types": types, "allowed_fields": sorted(allowed), "pseudonym_domain": first.pseudonym_domain,
        "retention_days": first.retention_days, "valid_from": first.valid_from, "valid_until": first.valid_until,
        "legal_basis": first.legal_basis,
    }
    if first.min_cell_size is not None:
        data["min_cell_size"] = first.min_cell_size
    try:
        agreement = Agreement.model_validate(data)
    except ValidationError as exc:
        raise PolicyRefused([f"{agreement_id}: {'.'.join(str(x) for x in e['loc']) or '(agreement)'}: {e['msg']}"
                             for e in exc.errors()]) from None
    return Imported(agreement, tuple(dict.fromkeys(lost)))


def policies_of(doc: Any) -> list[Mapping[str, Any]]:
    """The policies of a document: a policy, a list, a ``@graph``, a Dataspace Protocol
    ``ContractAgreementMessage`` (its ``agreement``), or a DSP ``Catalog`` / ``Dataset`` (each offer
    of ``hasPolicy``, its dataset as target)."""
    if isinstance(doc, list):
        return [p for d in doc for p in policies_of(d)]
    if not isinstance(doc, dict):
        raise PolicyRefused(["the document is not a JSON object or list of ODRL policies"])
    kind = str(doc.get("@type") or doc.get("type") or "").rsplit(":", 1)[-1].rsplit("#", 1)[-1]
    if "@graph" in doc:
        return policies_of(doc["@graph"])
    if kind == "ContractAgreementMessage" and isinstance(doc.get("agreement"), dict):
        return [doc["agreement"]]
    if kind == "Catalog":
        return [p for d in doc.get("dataset") or [] for p in policies_of(d)]
    if kind == "Dataset":
        return [{**offer, "target": doc.get("@id")} for offer in doc.get("hasPolicy") or [] if isinstance(offer, dict)]
    return [doc]


def from_document(doc: Any, parties: Mapping[str, str] | None = None) -> list[Imported]:
    """Agreements from ODRL policies (see module doc); :class:`PolicyRefused` lists every reason."""
    read: list[Policy] = []
    refusals: list[str] = []
    for policy in policies_of(doc):
        try:
            read.append(read_policy(policy, parties))
        except PolicyRefused as exc:
            refusals += exc.reasons
    if refusals:
        raise PolicyRefused(refusals)
    if not read:
        raise PolicyRefused(["the document holds no policy"])
    groups: dict[str, list[Policy]] = {}
    for p in read:
        groups.setdefault(p.group or _slug(p.id), []).append(p)
    out: list[Imported] = []
    for agreement_id, members in groups.items():
        try:
            out.append(build(members, agreement_id))
        except PolicyRefused as exc:
            refusals += exc.reasons
    if refusals:
        raise PolicyRefused(refusals)
    return out


@dataclass(frozen=True)
class Request:
    """One event offered to one partner: what the policy is evaluated against."""

    venue: str
    event_type: str
    partner: str
    at: datetime
    consented: frozenset[str]
    """Purposes for which the person holds a valid consent naming ``partner`` at ``at``."""


@dataclass(frozen=True)
class Verdict:
    permitted: bool
    purposes: tuple[str, ...] = ()
    """The policy's purposes that are consented, in the policy's order."""
    fields: frozenset[str] = frozenset()
    """Fields beyond the envelope the partner may receive when permitted."""


def evaluate(policy: Mapping[str, Any], request: Request) -> Verdict:
    """The profile's decision for one event (see module doc)."""
    p = read_policy(policy)
    if (p.venue, p.event_type, p.partner) != (request.venue, request.event_type, request.partner):
        return Verdict(False)
    assert p.valid_from is not None and p.valid_until is not None
    day = request.at.astimezone(UTC).date()
    if not p.valid_from <= day <= p.valid_until:
        return Verdict(False)
    if p.event_type in KIND_OF_TYPE and not KIND_OF_TYPE[p.event_type].personal:  # describes no one: no consent to hold
        return Verdict(bool(p.purposes), tuple(p.purposes), frozenset(p.fields or ()))
    purposes = tuple(x for x in p.purposes if x in request.consented)
    return Verdict(bool(purposes), purposes, frozenset(p.fields or ()))
