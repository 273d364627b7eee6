"""A Prometheus-X bilateral contract (contract manager) into one of our agreements.

A Prometheus-X contract is ODRL-shaped JSON: ``dataProvider`` and ``dataConsumer`` (participant
self-description URLs), ``purpose[]`` (``{"purpose": ...}``, often a URL or free text),
``policy[].permission[]`` (``action``, ``target``, ``constraint[]``, ``duty[]``), ``status``
(``signed``, ``revoked``, ``under_negotiation``, ``pending``), ``terminationAndValidity``
(``effectiveDate``, ``terminationPeriod``) and, in newer contracts, ``serviceOfferings[]`` whose
``sla.retentionPeriod`` is an ISO 8601 duration. Its ``@context`` (the ODRL namespace IRI) is not
a JSON-LD context, so the contract is read as plain JSON.

:func:`from_contract` rewrites the contract as policies of our ODRL profile — one per permission
target, the contract's purposes, validity and retention added as the profile's constraint and
duty — and reads them with :mod:`schemas.dataspace.odrl`, so a contract is refused for exactly
the reasons an ODRL policy would be, plus its own: not signed, no provider, no consumer, a
prohibition, several providers (an ecosystem contract). Targets that are not an event type the
bus shares are left out (``lost``), as are purposes that are not ours; with none left, refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.agreements import EVENT_TYPES
from schemas.dataspace.odrl import Imported, _slug, build
from schemas.dataspace.policy import read_policy
from schemas.dataspace.profile import (
    PolicyRefused,
    asset_iri,
    parse_urn,
    partner_iri,
    venue_iri,
)


def _party(value: Any, kind: str, parties: Mapping[str, str]) -> str | None:
    """Our id for a participant: mapped, our URN, else the last segment of its URL."""
    text = str(value or "").strip()
    if not text:
        return None
    if text in parties:
        return parties[text]
    urn = parse_urn(text)
    if urn:
        return urn[1] if urn[0] == kind else None
    return text.rstrip("/").rsplit("/", 1)[-1].lower() or None


def _event_type(target: Any, venue: str, parties: Mapping[str, str]) -> str | None:
    text = str(target or "")
    mapped = parties.get(text, text)
    urn = parse_urn(mapped)
    if urn and urn[0] == "asset" and urn[1].startswith(venue + ":"):
        mapped = urn[1].split(":", 1)[1]
    return mapped if mapped in EVENT_TYPES else None


def from_contract(contract: Mapping[str, Any], parties: Mapping[str, str] | None = None,
                  agreement_id: str | None = None) -> Imported:
    """The contract as an agreement (see module doc); :class:`PolicyRefused` lists every reason."""
    parties = parties or {}
    if not isinstance(contract, Mapping):
        raise PolicyRefused(["the contract is not a JSON object"])
    cid = str(contract.get("uid") or contract.get("_id") or contract.get("@id") or "contract")
    ident = agreement_id or "px-" + _slug(cid)
    refusals: list[str] = []
    lost: list[str] = []
    status = contract.get("status")
    if status != "signed":
        refusals.append(f"{cid}: status {status!r}: only a signed contract can be enforced")
    if contract.get("dataProvider") is None and contract.get("serviceOfferings") and contract.get("members"):
        refusals.append(f"{cid}: an ecosystem contract (several members) cannot be one agreement: "
                        "import each bilateral contract")
    venue = _party(contract.get("dataProvider"), "venue", parties)
    if venue is None:
        refusals.append(f"{cid}: the contract has no dataProvider (the venue)")
    partner = _party(contract.get("dataConsumer"), "partner", parties)
    if partner is None:
        refusals.append(f"{cid}: the contract has no dataConsumer: there is no partner to share with")
    purposes = [p.get("purpose") if isinstance(p, Mapping) else p for p in contract.get("purpose") or []]
    validity = contract.get("terminationAndValidity") or {}
    retentions = [o["sla"]["retentionPeriod"] for o in contract.get("serviceOfferings") or []
                  if isinstance(o, Mapping) and isinstance(o.get("sla"), Mapping) and o["sla"].get("retentionPeriod")]
    permissions: list[Mapping[str, Any]] = []
    for policy in contract.get("policy") or []:
        if not isinstance(policy, Mapping):
            continue
        if policy.get("prohibition"):
            refusals.append(f"{cid}: policy {policy.get('uid') or policy.get('description') or ''!s}: "
                            "a prohibition cannot be enforced by the bus")
        permissions += [p for p in policy.get("permission") or [] if isinstance(p, Mapping)]
    if refusals:
        raise PolicyRefused(refusals)
    assert venue is not None and partner is not None
    policies = []
    for n, permission in enumerate(permissions):
        event_type = _event_type(permission.get("target"), venue, parties)
        if event_type is None:
            lost.append(f"{cid}: permission target {permission.get('target')!r} is not an event type the bus "
                        "shares: not shared (map it with --party IRI=<event type>)")
            continue
        given = permission.get("constraint") or []
        constraints = list(given) if isinstance(given, list) else [given]
        if purposes:
            constraints.append({"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": purposes})
        if validity.get("effectiveDate"):
            constraints.append({"leftOperand": "dateTime", "operator": "gteq",
                                "rightOperand": str(validity["effectiveDate"])})
        if validity.get("terminationPeriod"):
            constraints.append({"leftOperand": "dateTime", "operator": "lteq",
                                "rightOperand": str(validity["terminationPeriod"])})
        duties = list(permission.get("duty") or [])
        duties += [{"action": "delete", "constraint": [{"leftOperand": "elapsedTime", "operator": "lteq",
                                                        "rightOperand": r}]} for r in retentions]
        policies.append({
            "@id": f"{cid}#permission-{n}", "@type": "Agreement", "techne:agreement": ident,
            "assigner": venue_iri(venue), "assignee": partner_iri(partner), "target": asset_iri(venue, event_type),
            "permission": [{"action": permission.get("action"), "constraint": constraints, "duty": duties}],
        })
    if not policies:
        raise PolicyRefused([f"{cid}: no permission targets an event type the bus shares "
                             f"({', '.join(sorted(EVENT_TYPES))}); nothing to enforce"])
    read, reasons = [], []
    for policy in policies:
        try:
            read.append(read_policy(policy))
        except PolicyRefused as exc:
            reasons += exc.reasons
    if reasons:
        raise PolicyRefused(reasons)
    imported = build(read, ident)
    if contract.get("signatures"):
        lost.append(f"{cid}: signatures are not carried into the YAML agreement (keep the signed contract)")
    return Imported(imported.agreement, tuple(dict.fromkeys([*lost, *imported.lost])))
