"""Property tests of the ODRL export. Any agreement survives YAML -> ODRL -> YAML. And the exported
policy says what the bus does: on generated agreements, events and consent
states, the profile's evaluator (:func:`schemas.dataspace.odrl.evaluate`, reading the exported
JSON) takes the same share/drop decision as the routing (:func:`streams.steps.route.route`), for
the same purpose, and the routed record carries no field the policy does not permit."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas import CATALOGUE
from schemas.agreements import Agreement
from schemas.dataspace import odrl
from schemas.dataspace.profile import ENVELOPE, PURPOSES, asset_iri
from schemas.examples import example_record
from schemas.models import EVENT_SCHEMAS
from schemas.sharing import PROJECTABLE_BY_TYPE
from streams.steps.consent import DEFAULT_TTL, apply_consent, decide
from streams.steps.route import route
from techne import dataspace_cli

KEY = b"k" * 32
VENUES = ["v1", "v2", "v3"]
PARTNERS = ["p1", "p2"]
TYPES = sorted(PROJECTABLE_BY_TYPE)
DAY0 = date(2026, 1, 1)


@st.composite
def agreements(draw: st.DrawFn, n: int) -> Agreement:
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))
    shareable = sorted(frozenset().union(*(PROJECTABLE_BY_TYPE[t] for t in types)))
    start = DAY0 + timedelta(days=draw(st.integers(0, 60)))
    return Agreement.model_validate({
        "id": f"dsa-{n}", "provider_venues": draw(st.lists(st.sampled_from(VENUES), min_size=1, max_size=3,
                                                           unique=True)),
        "partner": draw(st.sampled_from(PARTNERS)),
        "purposes": draw(st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True)),
        "event_types": types, "allowed_fields": draw(st.lists(st.sampled_from(shareable), unique=True)),
        "retention_days": draw(st.integers(1, 3650)), "valid_from": start,
        "valid_until": start + timedelta(days=draw(st.integers(0, 90))),
        "pseudonym_domain": draw(st.none() | st.just("shared-d")),
    })


@st.composite
def ledgers(draw: st.DrawFn, at: datetime) -> dict[str, Any] | None:
    """A consent state: per purpose granted or withdrawn, at some time before or after the event
    (a grant may have expired), naming some partners."""
    if draw(st.integers(0, 9)) == 0:
        return None
    entry: dict[str, Any] | None = None
    for purpose in draw(st.lists(st.sampled_from(PURPOSES), min_size=1, unique=True)):
        when = at - timedelta(days=draw(st.integers(-5, 500)))
        entry, _ = apply_consent(entry, {
            "event_type": draw(st.sampled_from(["consent.granted", "consent.granted", "consent.withdrawn"])),
            "occurred_at": when, "purpose": purpose,
            "recipients": draw(st.lists(st.sampled_from([*PARTNERS, "p9"]), min_size=1, unique=True))})
    return entry


def raw_event(event_type: str, venue: str, at: datetime) -> dict[str, Any]:
    record = example_record(CATALOGUE.entry(EVENT_SCHEMAS[event_type]).raw)
    record.update(venue_id=venue, occurred_at=at, received_at=at, event_type=event_type)
    if "subject" in record:  # ad spend carries no person at all
        record["subject"] = {**record["subject"], "email": "personne@exemple.fr"}
    return record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_exported_policy_takes_the_routing_s_decision(data: st.DataObject) -> None:
    deals = [data.draw(agreements(n)) for n in range(data.draw(st.integers(1, 3)))]
    first = deals[0]  # most events fall within the first agreement's venues, types and dates
    span = (first.valid_until - first.valid_from).days
    day = data.draw(st.one_of(st.integers(-2, span + 2).map(lambda d: first.valid_from + timedelta(days=d)),
                              st.integers(-5, 160).map(lambda d: DAY0 + timedelta(days=d))))
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=data.draw(st.integers(0, 86399)))
    event_type = data.draw(st.sampled_from(first.event_types) | st.sampled_from(TYPES))
    venue = data.draw(st.sampled_from(first.provider_venues) | st.sampled_from(VENUES))
    ledger = data.draw(ledgers(at))
    decisions = {d.agreement_id: d for d in route(raw_event(event_type, venue, at), deals, ledger, key_version=1,
                                                   key=KEY)}
    for deal in deals:
        policies = [p for p in json.loads(json.dumps(odrl.document([deal])))["@graph"]
                    if p["target"] == asset_iri(venue, event_type)]
        consented = frozenset(p for p in PURPOSES
                              if decide(ledger, purpose=p, partner=deal.partner, at=at, ttl=DEFAULT_TTL).allowed)
        verdicts = [odrl.evaluate(p, odrl.Request(venue, event_type, deal.partner, at, consented)) for p in policies]
        permitted = [v for v in verdicts if v.permitted]
        routed = decisions.get(deal.id)
        shared = routed is not None and routed.outcome == "shared"
        assert shared == bool(permitted), (deal, venue, event_type, at, ledger, routed)
        event("shared" if shared else routed.reason if routed else "not covered or out of dates")
        if shared:
            assert routed is not None and routed.record is not None
            (verdict,) = permitted
            assert routed.purpose == verdict.purposes[0]  # the first consented purpose, in the agreement's order
            sent = {k for k, v in routed.record.items() if v is not None} - set(ENVELOPE)
            assert sent <= verdict.fields, sent - verdict.fields


@settings(max_examples=200, deadline=None)
@given(agreement=agreements(0))
def test_yaml_to_odrl_to_yaml_round_trips_any_agreement(agreement: Agreement) -> None:
    """The import's YAML (as ``techne agreements import`` writes it) of the export of any valid
    agreement is that agreement again, with nothing lost."""
    (imported,) = odrl.from_document(json.loads(json.dumps(odrl.document([agreement]))))
    assert imported.lost == ()
    back = Agreement.model_validate(yaml.safe_load(dataspace_cli._yaml(imported, "odrl test")))

    def normal(a: Agreement) -> dict[str, Any]:
        data = a.model_dump(mode="json")
        return {k: sorted(v) if k in ("provider_venues", "event_types", "allowed_fields") else v
                for k, v in data.items()}

    assert normal(back) == normal(agreement)
