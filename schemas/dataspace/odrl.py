"""Agreements as ODRL 2.2 ``Agreement`` policies (profile :mod:`schemas.dataspace.profile`), and back.

:func:`to_policies` gives one policy per provider venue and event type of an agreement (ODRL and
the Dataspace Protocol give a policy one assigner and one target): assigner the venue, assignee
the partner, target the asset, one ``use`` permission constrained by purpose, validity dates and
the field list, with a ``delete`` duty for the retention. :func:`document` is the JSON-LD export
of a list of agreements (``@graph``).

:func:`read_policy` reads one policy of the profile's subset and refuses, with every reason, what
the bus could not enforce (an unknown constraint or operator, a prohibition, an obligation, a
duty other than the timed delete, several permissions, no purpose, no date bound, no retention);
what it can only enforce more narrowly is kept, with a note in ``lost`` (a purpose outside ours,
a field that cannot be shared, a bound with a time of day). :func:`from_document` groups policies
by ``techne:agreement`` (else each is its own agreement) into validated agreements.

:func:`evaluate` is the profile's decision for one event: permitted when the policy's assigner,
target and assignee are the event's venue, asset and partner, the event's UTC date is within the
bounds, and one listed purpose is consented (``Request.consented``); it names the fields the
partner may then receive. It reads the JSON policy, not the agreement it came from, so tests can
check that the exported policy says what the routing does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import ValidationError

from schemas.agreements import EVENT_TYPES, Agreement
from schemas.dataspace.profile import (
    CONTEXT_URL,
    FIELD,
    ODRL_CONTEXT_URL,
    PROFILE,
    PURPOSES,
    PolicyRefused,
    asset_iri,
    days_of,
    literal,
    parse_urn,
    partner_iri,
    policy_iri,
    term,
    values,
    venue_iri,
)
from schemas.sharing import PROJECTABLE_BY_TYPE


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


@dataclass
class Policy:
    """What one policy of the profile says (see :func:`read_policy`)."""

    id: str
    group: str | None
    venue: str | None
    event_type: str | None
    partner: str | None
    purposes: list[str] = field(default_factory=list)
    valid_from: date | None = None
    valid_until: date | None = None
    fields: list[str] | None = None
    retention_days: int | None = None
    legal_basis: str = "consent"
    pseudonym_domain: str | None = None
    min_cell_size: int | None = None
    lost: list[str] = field(default_factory=list)


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _bound(value: Any, operator: str, where: str, lost: list[str]) -> date:
    """A dateTime bound as the first (gteq/gt) or last (lteq/lt) whole UTC day it allows; a bound
    with a time of day is narrowed to whole days, with a note."""
    text = str(literal(value))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if "T" in text else None
        day = date.fromisoformat(text) if moment is None else date.min
    except ValueError:
        raise PolicyRefused([f"{where}: dateTime {text!r} is not an ISO 8601 date"]) from None
    at = None
    if moment is not None:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment
        day, at = moment.date(), moment.time()
    first, last = at is None or at == time(0), at is None or at >= time(23, 59, 59)
    if operator == "gt" or (operator == "gteq" and not first):
        day += timedelta(days=1)
    elif operator == "lt" or (operator == "lteq" and not last):
        day -= timedelta(days=1)
    if at is not None and not (first if operator.startswith("g") else last):
        lost.append(f"{where}: dateTime bound {text} narrowed to whole days ({day.isoformat()})")
    return day


def _constraints(items: Any, where: str, refusals: list[str]) -> list[dict[str, Any]]:
    """Atomic constraints, ``and`` flattened; other logical constraints refused."""
    out: list[dict[str, Any]] = []
    for c in _as_list(items):
        if not isinstance(c, dict):
            refusals.append(f"{where}: a constraint is not an object")
            continue
        logical = [k for k in c if term(k) in ("and", "or", "xone", "andSequence")]
        if logical:
            if [term(k) for k in logical] == ["and"]:
                out += _constraints(c[logical[0]], where, refusals)
            else:
                refusals.append(f"{where}: logical constraint {term(logical[0])!r} is not part of the profile")
            continue
        out.append(c)
    return out


def _party(value: Any, kind: str, parties: Mapping[str, str]) -> str | None:
    text = str(literal(value)) if value is not None else ""
    if not text:
        return None
    if text in parties:
        return parties[text]
    urn = parse_urn(text)
    if urn and urn[0] == kind:
        return urn[1]
    return None


def read_policy(policy: Mapping[str, Any], parties: Mapping[str, str] | None = None) -> Policy:
    """Read one policy (see module doc); raise :class:`PolicyRefused` naming every problem.

    ``parties`` maps foreign IRIs to our ids (venue, partner, or event type for a target)."""
    parties = parties or {}
    pid = str(policy.get("@id") or policy.get("uid") or "(policy without @id)")
    refusals: list[str] = []
    lost: list[str] = []
    kind = term(policy.get("@type") or policy.get("type") or "")
    if kind not in ("Agreement", "Offer"):
        refusals.append(f"{pid}: @type {kind or '(none)'!r} is not an ODRL Agreement")
    venue = _party(policy.get("assigner"), "venue", parties)
    if venue is None:
        refusals.append(f"{pid}: assigner {policy.get('assigner')!r} is not a known venue "
                        "(urn:techne:venue:<id>, or map it with --party IRI=<venue id>)")
    partner = _party(policy.get("assignee"), "partner", parties)
    if partner is None:
        refusals.append(f"{pid}: assignee {policy.get('assignee')!r} is missing or not a partner "
                        "(urn:techne:partner:<id>, or map it with --party IRI=<partner id>)")
    event_type = None
    target = str(literal(policy.get("target"))) if policy.get("target") is not None else ""
    mapped = parties.get(target, target)
    asset = parse_urn(mapped)
    if asset and asset[0] == "asset" and ":" in asset[1]:
        asset_venue, event_type = asset[1].split(":", 1)
        if venue is not None and asset_venue != venue:
            refusals.append(f"{pid}: target {target} belongs to venue {asset_venue}, not to the assigner {venue}")
    elif mapped in EVENT_TYPES:
        event_type = mapped
    if kind == "Agreement" and event_type not in EVENT_TYPES:
        refusals.append(f"{pid}: target {target or '(none)'!r} is not an event type the bus shares "
                        f"({', '.join(sorted(EVENT_TYPES))}; map it with --party IRI=<event type>)")
    for key in ("prohibition", "obligation"):
        if _as_list(policy.get(key)):
            refusals.append(f"{pid}: a {key} cannot be enforced by the bus")
    permissions = _as_list(policy.get("permission"))
    if len(permissions) != 1:
        refusals.append(f"{pid}: exactly one permission expected, found {len(permissions)}")
    out = Policy(pid, str(policy["techne:agreement"]) if policy.get("techne:agreement") else None, venue,
                 event_type, partner, lost=lost)
    out.legal_basis = str(literal(policy.get("techne:legalBasis") or "consent"))
    domain = policy.get("techne:pseudonymDomain")
    if domain is not None and partner is not None and str(literal(domain)) != f"partner:{partner}":
        out.pseudonym_domain = str(literal(domain))
    if policy.get("techne:minCellSize") is not None:
        out.min_cell_size = int(literal(policy["techne:minCellSize"]))
    for permission in permissions[:1]:
        _read_permission(permission, pid, out, refusals)
    if refusals:
        raise PolicyRefused(refusals)
    return out


def _read_permission(permission: Any, pid: str, out: Policy, refusals: list[str]) -> None:
    if not isinstance(permission, dict):
        refusals.append(f"{pid}: the permission is not an object")
        return
    if term(permission.get("action", "")) != "use":
        refusals.append(f"{pid}: permission action {term(permission.get('action', ''))!r} is not 'use'")
    for c in _constraints(permission.get("constraint"), pid, refusals):
        left, operator = term(c.get("leftOperand", "")), term(c.get("operator", ""))
        right = c.get("rightOperand")
        if "rightOperandReference" in c or right is None:
            refusals.append(f"{pid}: constraint on {left!r} has no literal rightOperand")
        elif left == "purpose" and operator in ("isAnyOf", "eq"):
            for value in values(right):
                name = str(value).rsplit("/", 1)[-1].rsplit("#", 1)[-1] if "://" in str(value) else str(value)
                if name in PURPOSES and name not in out.purposes:
                    out.purposes.append(name)
                elif name not in PURPOSES:
                    out.lost.append(f"{pid}: purpose {value!r} is not one of the bus's ({', '.join(PURPOSES)}); "
                                    "not shared for it")
        elif left == "dateTime" and operator in ("gteq", "gt"):
            day = _bound(right, operator, pid, out.lost)
            out.valid_from = max(out.valid_from or day, day)
        elif left == "dateTime" and operator in ("lteq", "lt"):
            day = _bound(right, operator, pid, out.lost)
            out.valid_until = min(out.valid_until or day, day)
        elif left == FIELD and operator == "isPartOf":
            names = [str(v) for v in values(right)]
            shareable = PROJECTABLE_BY_TYPE.get(out.event_type or "", frozenset().union(*PROJECTABLE_BY_TYPE.values()))
            dropped = sorted(set(names) - shareable)
            if dropped:
                out.lost.append(f"{pid}: fields {dropped} cannot be shared for {out.event_type}; left out")
            kept = [n for n in names if n in shareable]
            out.fields = kept if out.fields is None else [n for n in out.fields if n in kept]
        else:
            refusals.append(f"{pid}: unknown constraint {left!r} {operator!r}: the bus cannot enforce it "
                            f"(profile {PROFILE}: purpose isAnyOf, dateTime gteq/lteq, {FIELD} isPartOf)")
    for duty in _as_list(permission.get("duty")):
        action = term(duty.get("action", "")) if isinstance(duty, dict) else ""
        if action != "delete":
            refusals.append(f"{pid}: duty {action!r} cannot be enforced (only a timed delete)")
            continue
        for c in _constraints(duty.get("constraint"), pid, refusals):
            left, operator = term(c.get("leftOperand", "")), term(c.get("operator", ""))
            if left != "elapsedTime" or operator != "lteq":
                refusals.append(f"{pid}: delete duty constraint {left!r} {operator!r} is not 'elapsedTime lteq'")
                continue
            try:
                days, note = days_of(str(literal(c.get("rightOperand"))))
            except ValueError as exc:
                refusals.append(f"{pid}: {exc}")
                continue
            if note:
                out.lost.append(f"{pid}: {note}")
            out.retention_days = min(out.retention_days or days, days)
    if not out.purposes:
        refusals.append(f"{pid}: no purpose the bus knows ({', '.join(PURPOSES)}): a purpose constraint is required")
    if out.valid_from is None or out.valid_until is None:
        refusals.append(f"{pid}: validity dates required (dateTime gteq and lteq)")
    if out.retention_days is None:
        refusals.append(f"{pid}: a delete duty with elapsedTime lteq <duration> (the retention) is required")
    if out.fields is None:
        out.fields = []
        out.lost.append(f"{pid}: no field list ({FIELD}): nothing beyond the envelope (ids, type, time, venue, "
                        "pseudonym) is shared until allowed_fields is filled in")


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
    """The policies of a JSON-LD document: a policy, a list, or a ``@graph``."""
    if isinstance(doc, list):
        return [p for d in doc for p in policies_of(d)]
    if isinstance(doc, dict) and "@graph" in doc:
        return policies_of(doc["@graph"])
    if isinstance(doc, dict):
        return [doc]
    raise PolicyRefused(["the document is not a JSON object or list of ODRL policies"])


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
    purposes = tuple(x for x in p.purposes if x in request.consented)
    return Verdict(bool(purposes), purposes, frozenset(p.fields or ()))
