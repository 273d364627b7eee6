"""The demo's per-source translations give what each connector really understands (pure), and
the per-source table counts every event once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from core.settings import DEFAULT_CONSENT_SOURCES
from producers.adapters import PUSH
from producers.adapters.consent import consent_events, load_consent_sources
from producers.ingest import FUTURE_TOLERANCE, EventRejected, prepare
from producers.matomo import to_events
from techne.demo_sources import Sourced, helloasso_order, matomo_hits, per_source, secutix_opt_in, secutix_order
from techne.traffic import SendResult, generate

NOW = datetime(2026, 11, 20, 18, tzinfo=UTC)
BATCH = generate(400, seed=3, now=NOW)
SOURCES = load_consent_sources(DEFAULT_CONSENT_SOURCES)


def events_of(source: str, venue: str, note: dict[str, object]) -> list[dict[str, object]]:
    body = json.dumps(note, ensure_ascii=False).encode()
    adapter = PUSH[source]
    mapped = consent_events(source, adapter.opt_ins(body), SOURCES.mapping(venue, source)) + adapter.events(body)
    for ev in mapped:
        prepare(ev.payload, venue_id=venue, subject_key=b"k" * 32, fallback_id=uuid.uuid4(), auth="t")
    return [ev.payload for ev in mapped]


def test_helloasso_and_secutix_translations_map_and_validate() -> None:
    order = next(e for e in BATCH if e.venue_id == "lieu-unique" and e.kind == "order")
    consent, paid = events_of("helloasso", "lieu-unique", helloasso_order(order.payload, "Oui"))
    assert (consent["type"], paid["type"]) == ("consent.granted", "ticket.order_paid")
    assert paid["amount_minor"] == order.payload["amount_minor"]
    assert [e["type"] for e in events_of("helloasso", "lieu-unique", helloasso_order(order.payload, None))] == [
        "ticket.order_paid"]
    stx = next(e for e in BATCH if e.venue_id == "opera-lyon" and e.kind == "order")
    placed = events_of("secutix", "opera-lyon", secutix_order(stx.payload))
    assert sum(int(str(p["quantity"])) for p in placed) == stx.payload["quantity"]
    opt_in = next(e for e in BATCH if e.venue_id == "opera-lyon" and e.kind == "consent")
    (consent,) = events_of("secutix", "opera-lyon", secutix_opt_in(opt_in.payload))
    assert consent["type"] == opt_in.payload["type"]


def test_matomo_hits_are_distinct_hits_of_both_tracker_shapes() -> None:
    hits = matomo_hits(BATCH, 30)
    assert any("r" in h for h in hits) and any("r" not in h for h in hits)
    keys = [key for _, _, key in to_events(hits)]
    assert len(keys) == 30 and len(set(keys)) == 30


def test_per_source_counts_each_event_once() -> None:
    order = BATCH[-1]
    sent = [Sourced("secutix", SendResult(order, 202, {"event_id": "a"})),
            Sourced("secutix", SendResult(order, 202, {"event_id": "b"})),
            Sourced("secutix", SendResult(order, 422, {"error": "schema_invalid"})),
            Sourced("csv", SendResult(order, 202, {"event_id": "c"}))]
    audit = {"a": [{"outcome": "shared"}, {"outcome": "dropped"}], "b": [{"outcome": "dropped"}],
             "c": [{"outcome": "no_agreement"}]}
    assert per_source(sent, audit) == {
        "csv": {"received": 1, "accepted": 1, "shared": 0, "dropped_consent": 0},
        "secutix": {"received": 3, "accepted": 2, "shared": 1, "dropped_consent": 1}}


def test_invalid_generated_orders_become_invalid_deliveries_not_crashes() -> None:
    invalid = next(e for e in generate(400, seed=3, now=NOW, invalid_share=0.2) if e.kind == "invalid")
    for note in (helloasso_order(invalid.payload, "Oui", invalid=True), secutix_order(invalid.payload, invalid=True)):
        source = "helloasso" if "eventType" in note else "secutix"
        venue = "lieu-unique" if source == "helloasso" else "opera-lyon"
        with pytest.raises(EventRejected):  # the gateway answers 422 for exactly this
            events_of(source, venue, note)


def test_generated_traffic_of_every_kind_is_dated_no_later_than_its_sending() -> None:
    mixed = generate(2000, seed=5, now=NOW, kinds_share=0.4)
    kinds = {e.kind for e in mixed}
    assert {"order", "scan", "lifecycle", "campaign", "page", "content", "ad_spend"} <= kinds, kinds
    late = [e.payload["type"] for e in mixed if isinstance(e.payload, dict) and "occurred_at" in e.payload
            and datetime.fromisoformat(str(e.payload["occurred_at"])) > NOW + FUTURE_TOLERANCE]
    assert late == []  # the gateway refuses an event dated more than a day ahead (retention starts there)
