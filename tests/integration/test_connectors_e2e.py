"""Each connector end to end on the real broker and chDB (issue 15's done-when), consent
collected through the connector's own consent path:

* a consented order reaches the partner's table once;
* an order of a person who never answered is dropped and audited (``no_record``);
* a refund through the source changes what the partner sees (``ticket_orders_current``: the
  order no longer counts);
* a withdrawal through the same source's consent path erases the shared order at the partner.

Connectors: HelloAsso push (order-form custom field; Payment refunded), SecuTix push (contact
opt-ins; ORDER_REFUNDED), Billetweb and Weezevent polls against the local simulator (custom
questions / form answers; cancelled ticket), CSV imports (consent, order and refund profiles),
canonical webhook (withdrawal through the preference centre).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import StoreLocked
from sinks.read_server import endpoint_path
from sinks.runner import partner_rows
from techne.accounting import collect_audit
from tests.conftest import Bus
from tests.integration.connector_flows import FLOWS, Flow
from tests.support.events import eventually

pytestmark = pytest.mark.integration
PARTNER = "observatoire"


@pytest.fixture
def sink(worker: Bus) -> Iterator[Bus]:
    """The observatoire's sink, started for the test (and stopped after) unless already running."""
    name = f"sink-{PARTNER}"
    started = name not in worker.stack.services
    if started:
        since = time.time()
        worker.stack.start_sink(PARTNER)
        endpoint = endpoint_path(worker.settings.partner_store_dir(PARTNER))
        # read only through the sink's read server: a direct open from this process would hold the store
        assert eventually(lambda: endpoint.exists() and endpoint.stat().st_mtime >= since - 1, timeout=60)
    yield worker
    if started:
        worker.stack.stop(name)


def stored(bus: Bus, event_ids: list[str]) -> list[str] | None:
    """Our orders in the partner's table (None while the starting sink does not serve reads yet)."""
    wanted = ", ".join(f"'{e}'" for e in event_ids)
    sql = f"SELECT toString(event_id) FROM ticket_orders WHERE toString(event_id) IN ({wanted})"  # noqa: S608
    try:
        return [str(r[0]) for r in partner_rows(bus.settings, PARTNER, sql)]
    except StoreLocked:
        return None




@pytest.mark.parametrize("connector", sorted(FLOWS))
def test_connector_shares_consented_orders_drops_others_and_erases_on_withdrawal(
        sink: Bus, tmp_path: Path, connector: str) -> None:
    bus = sink
    flow = FLOWS[connector](bus, tmp_path)
    try:
        run_flow(bus, flow)
    finally:
        flow.close()


def current_state(bus: Bus, event_id: str) -> tuple[str, int] | None:
    """The partner's current view (status, counts) of the order an event belongs to."""
    try:
        refs = partner_rows(bus.settings, PARTNER, "SELECT order_ref FROM ticket_orders "  # noqa: S608
                            f"WHERE toString(event_id) = '{event_id}'")
        if not refs or refs[0][0] is None:
            return None
        ((status, counts),) = partner_rows(bus.settings, PARTNER, "SELECT status, toUInt8(counts) FROM "  # noqa: S608
                                           f"ticket_orders_current WHERE order_key = '{refs[0][0]}'")
    except (StoreLocked, ValueError):
        return None
    return str(status), int(counts)


def run_flow(bus: Bus, flow: Flow) -> None:
    consented, unconsented = flow.grant_and_order()
    assert consented and unconsented

    audit = asyncio.run(collect_audit(bus.bootstrap, set(consented + unconsented), timeout=90))
    for event_id in consented:
        assert [(d["partner"], d["outcome"]) for d in audit[event_id] if d["partner"] == PARTNER] == [
            (PARTNER, "shared")], audit[event_id]
    for event_id in unconsented:
        assert {(d["outcome"], d["reason"]) for d in audit[event_id] if d["outcome"] != "venue_store"} == {
            ("dropped", "no_record")}
    assert {d.get("auth") for e in consented + unconsented for d in audit[e]} == {flow.auth}

    rows = eventually(lambda: len(stored(bus, consented) or []) == len(consented) and stored(bus, consented))
    assert sorted(rows) == sorted(consented), "each consented order stored exactly once"
    assert stored(bus, unconsented) == []

    assert current_state(bus, consented[0]) is not None and current_state(bus, consented[0])[1] == 1
    flow.refund()
    assert eventually(lambda: current_state(bus, consented[0]) == ("refunded", 0)), current_state(bus, consented[0])

    flow.withdraw()
    assert eventually(lambda: stored(bus, consented) == []), "the withdrawal erased the shared orders"
