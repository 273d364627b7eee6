"""Reading one ODRL policy of our profile (:mod:`schemas.dataspace.profile`), or refusing it.

:func:`read_policy` reads one policy and refuses, with every reason, what the bus could not
enforce (an unknown constraint or operator, a logical constraint other than ``and``, a
prohibition, an obligation, a duty other than the timed delete, several permissions, an action
other than ``use``, no purpose of ours, no date bound, no retention); what it can only enforce more
narrowly is kept, with a note in :attr:`Policy.lost` (a purpose outside ours, a field that cannot
be shared, a bound with a time of day, a duration in years or months, no field list).
It reads a term however a document spells it (see :func:`~schemas.dataspace.profile.term`), so a
JSON-LD processor's rewriting of a policy (``uid``/``type`` aliases, single values unwrapped)
reads the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from schemas.agreements import EVENT_TYPES
from schemas.dataspace.profile import (
    FIELD,
    PROFILE,
    PURPOSES,
    PolicyRefused,
    days_of,
    literal,
    parse_urn,
    term,
    values,
)
from schemas.sharing import PROJECTABLE_BY_TYPE


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


def _keys(value: Any) -> Any:
    """The same JSON with every object key as a short term (``odrl:permission``, the full IRI ->
    ``permission``; ``uid`` -> ``@id``, ``type`` -> ``@type``); values are left as they are."""
    if isinstance(value, list):
        return [_keys(v) for v in value]
    if isinstance(value, Mapping) and "@value" not in value:
        aliases = {"uid": "@id", "type": "@type"}
        return {aliases.get(term(k), term(k)): _keys(v) for k, v in value.items()}
    return value


def read_policy(policy: Mapping[str, Any], parties: Mapping[str, str] | None = None) -> Policy:
    """Read one policy (see module doc); raise :class:`PolicyRefused` naming every problem.

    ``parties`` maps foreign IRIs to our ids (venue, partner, or event type for a target)."""
    parties = parties or {}
    policy = _keys(policy)
    rules = _as_list(policy.get("permission"))
    if len(rules) == 1 and isinstance(rules[0], dict):  # ODRL lets a rule carry the parties and the target
        policy = {**{k: rules[0][k] for k in ("assigner", "assignee", "target") if k in rules[0]}, **policy}
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
    if event_type not in EVENT_TYPES:  # an offer of a catalogue gets its dataset as target
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
            for value in values(right):  # our ids only: a URL naming a purpose elsewhere is not ours to guess
                name = str(value)
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
