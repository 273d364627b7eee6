"""``techne demo``: the whole bus on this machine, with synthetic traffic from the pilot venues.

Starts the local Kafka broker (unless an external bootstrap is given), the gateway, a worker,
one sink per partner and one per venue's own store as real child processes, and sends signed
events of every kind of audience data (orders and their lifecycle, scans, campaigns, web,
content, ad spend: :func:`techne.traffic.generate` with ``kinds_share``) through the real HTTP
gateway. With ``events`` it waits until each event is accounted for (rejected with a 4xx, or
decided by the worker and, when shared or kept, committed by the partner's or the venue's
sink), reads every store through its running sink and returns the summary; ``all_accounted`` is true only if
nothing is missing and every store holds each event routed to it exactly once, over all its
tables. ``per_kind`` says where each kind went: shared with a partner, dropped for want of
consent, no agreement, kept in the venue's store, of which as consent-exempt measurement.

The demo owns its data directory: ``partners/``, ``venues/``, ``worker/``, ``logs/`` (and
``kafka/`` for the embedded broker) are recreated at each start.

Stopping: Ctrl-C (SIGINT) and SIGTERM both interrupt whatever the demo is doing, stop every
child it started (sinks, worker, gateway, then the broker; a second signal during that
cleanup is ignored so that nothing is left behind) and return the summary so far
(``interrupted`` names the signal, ``sent`` counts the answers by HTTP status); the CLI prints
it and exits with 128 + the signal number.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from core.settings import Settings
from core.topics import bus_topics, ensure_topics
from core.venues import load_venues
from schemas.agreements import load_agreements, partners
from schemas.kinds import KIND_OF_TYPE
from sinks.ddl import quote
from sinks.runner import partner_rows, tables_for
from sinks.tables import CLICK_TYPE, EMAIL_CLICKS, VENUE_STORE
from techne.accounting import collect_audit, wait_sinks_caught_up
from techne.demo_sources import per_source, print_per_source, send_by_source, source_env, with_sources
from techne.local import LocalKafka
from techne.stack import Stack, generate_secrets
from techne.traffic import Outgoing, SendResult, generate, send_all

KINDS_SHARE = 0.4
"""Share of the demo's events of the kinds other than orders, clicks and consents."""


@dataclass
class Progress:
    """What the demo has done so far: its phase and the answers it got, by HTTP status."""

    phase: str = "starting"
    sent: Counter[int] = field(default_factory=Counter)

    def record(self, results: list[SendResult]) -> None:
        self.sent.update(r.status for r in results)

    def describe(self) -> str:
        statuses = ", ".join(f"HTTP {s}: {n}" for s, n in sorted(self.sent.items())) or "none answered"
        return f"sent {sum(self.sent.values())} events ({statuses})"


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread while inside."""
    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def _shielded() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while inside (the cleanup must run to its end)."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _send_phased(url: str, batch: list[Outgoing], secrets: dict[str, str], progress: Progress | None = None,
                 chunk: int = 250) -> list[SendResult]:
    """Consents first (acknowledged before any order is sent), then the rest, ``chunk`` at a time
    (``progress`` counts the answers as they come)."""
    consents = [e for e in batch if e.kind == "consent"]
    others = [e for e in batch if e.kind != "consent"]
    results: list[SendResult] = []
    for phase in (consents, others):
        for i in range(0, len(phase), chunk):
            got = asyncio.run(send_all(url, phase[i:i + chunk], secrets))
            results += got
            if progress is not None:
                progress.record(got)
    return results


def summarize(results: list[SendResult], audit: dict[str, list[dict[str, Any]]],
              rows: dict[str, dict[str, Any]], lags: dict[str, int]) -> dict[str, Any]:
    """Pure: build the demo summary from what was sent, decided and stored."""
    per_venue: dict[str, Counter[str]] = defaultdict(Counter)
    per_kind: dict[str, Counter[str]] = defaultdict(Counter)
    routed: Counter[str] = Counter()
    routed_clicks: Counter[str] = Counter()
    unaccounted = 0
    for r in results:
        venue = per_venue[r.outgoing.venue_id]
        venue["sent"] += 1
        if 400 <= r.status < 500:
            venue["rejected"] += 1
            continue
        if r.status != 202:
            venue["failed"] += 1
            unaccounted += 1
            continue
        venue["accepted"] += 1
        decisions = audit.get(r.body["event_id"])
        if not decisions:
            unaccounted += 1
            continue
        outcomes = {d["outcome"] for d in decisions}
        _count_kind(per_kind, r.outgoing.payload.get("type", ""), decisions)
        if "consent_recorded" in outcomes:
            venue["consent_recorded"] += 1
        elif "shared" in outcomes:
            venue["shared"] += 1
        elif "dropped" in outcomes:
            venue["dropped_no_consent"] += 1
        else:
            venue["no_agreement"] += 1
        for d in decisions:
            if d["outcome"] == "shared":
                routed[d["partner"]] += 1
                routed_clicks[d["partner"]] += d.get("event_type") == CLICK_TYPE
            elif d["outcome"] == "venue_store":
                routed[f"{VENUE_STORE}{d['venue_id']}"] += 1
                routed_clicks[f"{VENUE_STORE}{d['venue_id']}"] += d.get("event_type") == CLICK_TYPE
    per_partner = {p: {"routed": routed[p], "routed_clicks": routed_clicks[p], **rows.get(p, {}),
                       "lag": lags.get(p, -1)} for p in rows}
    partners_ok = all(v["rows"] == v["distinct_event_ids"] == v["routed"] and v["lag"] == 0
                      and v.get("email_clicks", 0) == v["routed_clicks"] for v in per_partner.values())
    totals: Counter[str] = Counter()
    for counts in per_venue.values():
        totals.update(counts)
    return {
        "events": len(results),
        "totals": dict(totals),
        "per_venue": {v: dict(c) for v, c in sorted(per_venue.items())},
        "per_partner": per_partner,
        "per_kind": {k: dict(c) for k, c in sorted(per_kind.items())},
        "unaccounted": unaccounted,
        "all_accounted": unaccounted == 0 and partners_ok,
    }


def _count_kind(per_kind: dict[str, Counter[str]], event_type: str, decisions: list[dict[str, Any]]) -> None:
    """Where one accepted event of a shareable kind went (see module doc)."""
    kind = KIND_OF_TYPE.get(event_type)
    if kind is None:
        return
    counts = per_kind[kind.name]
    outcomes = [d["outcome"] for d in decisions]
    counts["accepted"] += 1
    if "shared" in outcomes:
        counts["shared"] += 1
    elif "dropped" in outcomes:
        counts["dropped_no_consent"] += 1
    else:
        counts["no_agreement"] += 1
    kept = [d for d in decisions if d["outcome"] == "venue_store"]
    counts["venue_store"] += bool(kept)
    counts["exempt_measurement"] += any(d["reason"] == "exempt_measurement" for d in kept)


def print_summary(summary: dict[str, Any]) -> None:
    cols = ["sent", "accepted", "rejected", "consent_recorded", "shared", "dropped_no_consent", "no_agreement"]
    print(f"\nTechné demo — {summary['events']} events in {summary['elapsed_s']:.1f}s "
          f"(data dir: {summary['data_dir']})")
    heads = ["sent", "accepted", "rejected", "consent", "shared", "dropped", "no_agreement"]
    widths = [max(8, len(h) + 2) for h in heads]
    print(f"{'venue':<14}" + "".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for venue, counts in [*summary["per_venue"].items(), ("TOTAL", summary["totals"])]:
        print(f"{venue:<14}" + "".join(f"{counts.get(c, 0):>{w}}" for c, w in zip(cols, widths, strict=True)))
    print("\nkind            accepted  shared  dropped  no_agreement  venue_store  of which exempt")
    for kind, k in summary.get("per_kind", {}).items():
        print(f"{kind:<14}{k.get('accepted', 0):>10}{k.get('shared', 0):>8}{k.get('dropped_no_consent', 0):>9}"
              f"{k.get('no_agreement', 0):>14}{k.get('venue_store', 0):>13}{k.get('exempt_measurement', 0):>17}")
    print("\nstore                 routed     rows  distinct  lag  of which clicks: routed  rows")
    for partner, p in summary["per_partner"].items():
        print(f"{partner:<21}{p['routed']:>9}{p['rows']:>9}{p['distinct_event_ids']:>10}{p['lag']:>5}"
              f"{p['routed_clicks']:>25}{p.get('email_clicks', 0):>6}")
    if summary.get("per_source"):
        print_per_source(summary["per_source"])
    w = summary.get("withdrawal")
    if w:
        print(f"\nwithdrawals: {w['withdrawals']}; new events stopped after p50 {w['stop_p50_s']} s / "
              f"p99 {w['stop_p99_s']} s; erasure done (partners and venue stores) for {w['erasures_done']} "
              f"(p50 {w['erased_p50_s']} s / p99 {w['erased_p99_s']} s), pending {w['erasures_pending']}")
    verdict = ("every event accounted for" if summary["all_accounted"]
               else f"{summary['unaccounted']} UNACCOUNTED" if summary["unaccounted"]
               else "a store does not hold exactly what was routed to it (see the store table)")
    hint = "SELECT venue_id, count() FROM ticket_orders GROUP BY venue_id"
    print(f"\n{verdict}; query a partner: techne query --data-dir {summary['data_dir']} "
          f"--partner observatoire \"{hint}\"")


def run_demo(settings: Settings, *, events: int | None, external_bootstrap: bool = False, rate: float = 50.0,
             seed: int = 7, verbose: bool = True, timeout: float = 180.0) -> dict[str, Any]:
    """Run the demo (see module doc); with ``events=None`` until SIGINT/SIGTERM."""
    started = time.monotonic()
    progress = Progress()
    data_dir = settings.data_dir.resolve()
    with _interruptible():
        try:
            return _run(settings, events=events, external_bootstrap=external_bootstrap, rate=rate, seed=seed,
                        verbose=verbose, timeout=timeout, progress=progress)
        except Interrupted as stop:
            return {"interrupted": stop.args[0], "signal": stop.signum, "phase": progress.phase,
                    "sent": {str(s): n for s, n in sorted(progress.sent.items())}, "progress": progress.describe(),
                    "data_dir": str(data_dir), "elapsed_s": round(time.monotonic() - started, 2),
                    "all_accounted": False}


def print_interrupted(summary: dict[str, Any]) -> None:
    print(f"\nTechné demo stopped by {summary['interrupted']} after {summary['elapsed_s']:.1f}s "
          f"(phase: {summary['phase']}); {summary['progress']}; every child process stopped "
          f"(data dir: {summary['data_dir']})", flush=True)


CONSOLE_VENUE = "gemeaux"
"""The pilot venue whose team gets a one-time console login from the demo."""


def console_login(data_dir: Path, venue: str, console_url: str) -> str:
    """A one-time sign-in link to the console for ``venue``'s team (user ``equipe-<venue>``,
    created without a password if missing)."""
    from techne.console.users import UserStore

    users = UserStore(data_dir / "console" / "console.sqlite")
    try:
        name = f"equipe-{venue}"
        if users.get(name) is None:
            users.add(name, venue=venue)
        return f"{console_url}/connexion/lien/{users.issue_link(name)}"
    finally:
        users.close()


def _run(settings: Settings, *, events: int | None, external_bootstrap: bool, rate: float, seed: int,
         verbose: bool, timeout: float, progress: Progress) -> dict[str, Any]:
    started = time.monotonic()
    data_dir = settings.data_dir.resolve()
    owned = ["partners", "venues", "worker", "logs", "audit", "imports", "connectors"] + (
        [] if external_bootstrap else ["kafka"])
    for sub in owned:
        shutil.rmtree(data_dir / sub, ignore_errors=True)
    venues = sorted(load_venues(settings.venues_file))
    partner_ids = partners(load_agreements(settings.agreements_dir, set(venues)))
    broker = None if external_bootstrap else LocalKafka(data_dir / "kafka", partitions=settings.partitions)
    env = {**generate_secrets(venues), **source_env(), "TECHNE_DATA_DIR": str(data_dir)}
    secrets = {v: s[0] for v, s in json.loads(env["TECHNE_VENUE_SECRETS"]).items()}
    stack = Stack(env, data_dir / "logs")
    try:
        progress.phase = "starting the broker"
        bootstrap = settings.bootstrap if broker is None else broker.start()
        env["TECHNE_BOOTSTRAP"] = bootstrap
        asyncio.run(ensure_topics(bootstrap, bus_topics(venues, partner_ids), settings.partitions,
                                  settings.replication_factor))
        progress.phase = "starting the processes"
        url = stack.start_gateway()
        worker = stack.start_worker()
        sinks = [stack.start_sink(p) for p in partner_ids] + [stack.start_venue_sink(v) for v in venues]
        stores = [*partner_ids, *(f"{VENUE_STORE}{v}" for v in venues)]
        stack.start_audit_sink()
        env["TECHNE_CONSOLE_GATEWAY_URL"] = url
        console = stack.start_console()
        if verbose:
            print(f"bus up: kafka {bootstrap}, gateway {url}, worker /metrics :{worker.metrics_port}, "
                  + ", ".join(f"{s.name} /metrics :{s.metrics_port}" for s in sinks))
            print(f"console: {console} — {CONSOLE_VENUE}, one-time login (1 h): "
                  f"{console_login(data_dir, CONSOLE_VENUE, console)}")
        if events is None:
            progress.phase = "sending"
            _run_forever(stack, url, secrets, rate, seed, progress)
        batch = generate(events, seed=seed, kinds_share=KINDS_SHARE)
        progress.phase = "sending"
        sourced = send_by_source(with_sources(settings.model_copy(update={"data_dir": data_dir}), env), url, batch,
                                 secrets)
        results = [s.result for s in sourced]
        progress.record(results)
        progress.phase = "accounting"
        accepted = {r.body["event_id"] for r in results if r.status == 202}
        audit = asyncio.run(collect_audit(bootstrap, accepted, timeout))
        stack.check()
        lags = asyncio.run(wait_sinks_caught_up(bootstrap, stores, timeout))
        # read through each running sink's read server (sinks.reader): no sink stops, so the
        # console can read the same stores meanwhile, and the withdrawals below find them running
        rows = {p: _stored(settings.model_copy(update={"data_dir": data_dir}), p) for p in stores}
        summary = summarize(results, audit, rows, lags)
        summary["per_source"] = per_source(sourced, audit)
        progress.phase = "withdrawals"
        summary["withdrawal"] = _measure_withdrawals(url, bootstrap, batch, results, secrets, timeout)
        summary.update(data_dir=str(data_dir), bootstrap=bootstrap, elapsed_s=round(time.monotonic() - started, 2))
        if verbose:
            print_summary(summary)
        return summary
    finally:
        with _shielded():
            stack.stop_all()
            if broker is not None:
                broker.stop()


def _stored(settings: Settings, partner: str) -> dict[str, int]:
    """Rows and distinct event ids over the store's tables of shared events (a partner's, or a
    venue's own: ``venue:<venue>``), and its e-mail clicks."""
    parts = " UNION ALL ".join(
        f"SELECT count() AS n, uniqExact(event_id) AS u, {int(spec.name == EMAIL_CLICKS)} AS clicks "  # noqa: S608
        f"FROM {quote(spec.name)}" for spec in tables_for(settings, partner).shared)
    sql = f"SELECT sum(n), sum(u), sumIf(n, clicks = 1) FROM ({parts})"  # noqa: S608
    ((rows, distinct, clicks),) = partner_rows(settings, partner, sql)
    return {"rows": int(rows), "distinct_event_ids": int(distinct), "email_clicks": int(clicks)}


def _measure_withdrawals(url: str, bootstrap: str, batch: list[Outgoing], results: list[SendResult],
                         secrets: dict[str, str], timeout: float, count: int = 20) -> dict[str, Any]:
    """Withdraw ``count`` granted consents one by one; time the stop and the partner erasure."""
    import httpx

    from producers.gateway.signatures import sign
    from techne.withdrawals import latencies

    granted = [r.outgoing for r in results if r.status == 202 and r.outgoing.kind == "consent"
               and r.outgoing.payload["type"] == "consent.granted"][:count]
    accepted_at: dict[str, float] = {}
    with httpx.Client(timeout=30.0) as client:
        for ev in granted:
            payload = {**ev.payload, "type": "consent.withdrawn", "recipients": [], "event_id": str(uuid.uuid4()),
                       "occurred_at": datetime.now(UTC).isoformat()}
            body = json.dumps(payload).encode()
            signed = sign(body, secret=secrets[ev.venue_id], msg_id=f"msg_{uuid.uuid4().hex}", timestamp=time.time())
            headers = {"content-type": "application/json", **signed}
            resp = client.post(f"{url}/v1/venues/{ev.venue_id}/events", content=body, headers=headers)
            if resp.status_code == 202:
                accepted_at[resp.json()["event_id"]] = time.time()
    ids = set(accepted_at)
    asyncio.run(collect_audit(bootstrap, ids, timeout))
    time.sleep(1.0)  # the erasure_requested lines are written right after consent_recorded
    audit = asyncio.run(collect_audit(bootstrap, ids, 5))
    commands = {d["command_id"] for lines in audit.values() for d in lines if d.get("command_id")}
    erased_lines = asyncio.run(collect_audit(bootstrap, commands, timeout))
    erased = {c: next(d for d in lines if d["outcome"] == "erased") for c, lines in erased_lines.items()
              if any(d["outcome"] == "erased" for d in lines)}
    return latencies(accepted_at, audit, erased)


def _run_forever(stack: Stack, url: str, secrets: dict[str, str], rate: float, seed: int,
                 progress: Progress) -> NoReturn:
    """Send about ``rate`` events per second until interrupted, printing progress every 5 s."""
    tick = 0
    last_print = time.monotonic()
    while True:
        t0 = time.monotonic()
        _send_phased(url, generate(max(5, int(rate)), seed=seed + tick, kinds_share=KINDS_SHARE), secrets, progress)
        stack.check()
        tick += 1
        if time.monotonic() - last_print >= 5:
            print(progress.describe(), flush=True)
            last_print = time.monotonic()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
