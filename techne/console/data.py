"""What the console's pages show, read through the one read path (:mod:`sinks.reader`).

Every function takes one venue id and returns plain values for the templates; every query is
filtered on that venue (bound as a parameter) and none returns a pseudonym or an identifier:
only counts, dates, partner ids, purposes and reason codes. Sources: the audit store (the
worker's decisions, with the source's ``auth`` and, for consents, ``received_at``; the sinks'
``erased`` records) and the partner stores (rows of this venue per table).

Promises measured on the sharing page: a withdrawal stops sharing within :data:`STOP_PROMISE_S`
(from the bus receiving it to the worker recording it; a person's later events are then
decided after it) and is erased from every partner store within :data:`ERASE_PROMISE_S` (to the
last sink's ``erased`` record).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.errors import StoreMissing, TechneError
from core.settings import Settings
from schemas.agreements import Agreement, load_agreements
from sinks.reader import read_rows
from sinks.runner import audit_ref, partner_ref, tables_for
from sinks.tables import EMAIL_CLICKS, TICKET_ORDERS
from streams.steps.consent import DEFAULT_TTL

STOP_PROMISE_S = 5.0
ERASE_PROMISE_S = 60.0
WITHDRAWAL_TYPES = ("consent.withdrawn", "erasure.requested", "subject.erasure_requested")
_TS = "%Y-%m-%d %H:%M:%S.%f"


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bounds(since: date, until: date) -> dict[str, str]:
    return {"v_from": f"{since.isoformat()} 00:00:00", "v_to": f"{(until + timedelta(days=1)).isoformat()} 00:00:00"}


PERIOD = "decided_at >= toDateTime64({v_from:String}, 6, 'UTC') AND decided_at < toDateTime64({v_to:String}, 6, 'UTC')"


def venue_agreements(settings: Settings, venue: str) -> list[Agreement]:
    return [a for a in load_agreements(settings.agreements_dir) if venue in a.provider_venues]


@dataclass
class ShareLine:
    partner: str
    purpose: str
    shared: int = 0
    dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class Sharing:
    lines: list[ShareLine]
    no_agreement: dict[str, int]
    """reason -> events not shared because no agreement covers them."""


def sharing(settings: Settings, venue: str, since: date, until: date) -> Sharing:
    """Distinct events shared / dropped (no consent) per partner and purpose, and without agreement."""
    sql = ("SELECT outcome, partner, purpose, reason, uniqExact(event_id) FROM decisions "  # noqa: S608
           f"WHERE venue_id = {{venue:String}} AND outcome IN ('shared', 'dropped', 'no_agreement') AND {PERIOD} "
           "GROUP BY ALL ORDER BY partner, purpose")
    rows = read_rows(settings, audit_ref(settings), sql, {"venue": venue, **_bounds(since, until)})
    lines: dict[tuple[str, str], ShareLine] = {}
    none: dict[str, int] = defaultdict(int)
    for outcome, partner, purpose, reason, count in rows:
        if outcome == "no_agreement":
            none[str(reason)] += int(count)
            continue
        line = lines.setdefault((partner, purpose), ShareLine(partner, purpose))
        if outcome == "shared":
            line.shared += int(count)
        else:
            line.dropped += int(count)
            line.reasons[str(reason)] = line.reasons.get(str(reason), 0) + int(count)
    return Sharing(sorted(lines.values(), key=lambda s: (s.partner, s.purpose)), dict(none))


@dataclass
class Withdrawal:
    event_id: str
    event_type: str
    received_at: datetime | None
    recorded_at: datetime
    erased_at: datetime | None
    partners: list[str]
    pending: list[str]

    @property
    def stop_s(self) -> float | None:
        if self.received_at is None:
            return None
        return max(0.0, (self.recorded_at - self.received_at).total_seconds())

    @property
    def erase_s(self) -> float | None:
        start = self.received_at or self.recorded_at
        if self.erased_at is None or self.pending:
            return None
        return max(0.0, (self.erased_at - start).total_seconds())

    @property
    def overdue(self) -> bool:
        """Erasure still pending at some partner past the promise."""
        start = self.received_at or self.recorded_at
        return bool(self.pending) and (datetime.now(UTC) - start).total_seconds() > ERASE_PROMISE_S

    @property
    def stop_kept(self) -> bool | None:
        return None if self.stop_s is None else self.stop_s <= STOP_PROMISE_S

    @property
    def erase_kept(self) -> bool | None:
        return None if self.erase_s is None else self.erase_s <= ERASE_PROMISE_S


def withdrawals(settings: Settings, venue: str, since: date, until: date, limit: int = 200) -> list[Withdrawal]:
    """Withdrawals and erasure requests of the period with their stop and erasure timings."""
    params = {"venue": venue, **_bounds(since, until), "types": list(WITHDRAWAL_TYPES)}
    recorded = read_rows(settings, audit_ref(settings), (
        "SELECT event_id, any(event_type), min(decided_at), any(JSONExtractString(details, 'received_at')) "  # noqa: S608
        "FROM decisions WHERE venue_id = {venue:String} AND outcome = 'consent_recorded' AND reason = 'applied' "
        f"AND event_type IN {{types:Array(String)}} AND {PERIOD} "
        f"GROUP BY event_id ORDER BY min(decided_at) DESC LIMIT {int(limit)}"), params)
    if not recorded:
        return []
    ids = [str(r[0]) for r in recorded]
    commands = read_rows(settings, audit_ref(settings), (
        "SELECT DISTINCT event_id, JSONExtractString(details, 'command_id'), partner FROM decisions "
        "WHERE venue_id = {venue:String} AND outcome = 'erasure_requested' AND event_id IN {ids:Array(String)}"),
        {"venue": venue, "ids": ids})
    by_event: dict[str, dict[str, str]] = defaultdict(dict)
    for event_id, command_id, partner in commands:
        by_event[str(event_id)][str(command_id)] = str(partner)
    command_ids = [c for cs in by_event.values() for c in cs]
    erased: dict[str, datetime] = {}
    if command_ids:
        for command_id, at in read_rows(settings, audit_ref(settings), (
                "SELECT event_id, min(decided_at) FROM decisions WHERE outcome = 'erased' "
                "AND event_id IN {ids:Array(String)} GROUP BY event_id"), {"ids": command_ids}):
            when = _ts(at)
            if when is not None:
                erased[str(command_id)] = when
    out = []
    for event_id, event_type, at, received in recorded:
        mine = by_event.get(str(event_id), {})
        done = [erased[c] for c in mine if c in erased]
        out.append(Withdrawal(str(event_id), str(event_type), _ts(received), _ts(at) or datetime.now(UTC),
                              max(done) if done else None, sorted(set(mine.values())),
                              sorted({p for c, p in mine.items() if c not in erased})))
    return out


@dataclass
class PartnerRows:
    partner: str
    table: str
    rows: int
    latest: datetime | None
    error: str | None = None


def partner_rows(settings: Settings, venue: str, partners: list[str]) -> list[PartnerRows]:
    """Rows of this venue in each partner table (counts only: never a pseudonym)."""
    out = []
    for partner in partners:
        shared = {t.name for t in tables_for(settings, partner).shared}
        for table in (TICKET_ORDERS, EMAIL_CLICKS):
            if table not in shared and table != TICKET_ORDERS:
                continue
            try:
                ((rows, latest),) = read_rows(settings, partner_ref(settings, partner), (
                    f"SELECT count(), max(occurred_at) FROM {table} WHERE venue_id = {{venue:String}}"),  # noqa: S608
                    {"venue": venue})
            except StoreMissing:  # nothing stored for this partner yet
                out.append(PartnerRows(partner, table, 0, None))
                continue
            except TechneError as exc:
                out.append(PartnerRows(partner, table, 0, None, str(exc)[:200]))
                continue
            out.append(PartnerRows(partner, table, int(rows), _ts(latest) if int(rows) else None))
    return out


@dataclass
class Source:
    auth: str
    events: int
    shared: int
    last: datetime | None


def sources(settings: Settings, venue: str, since: date, until: date) -> list[Source]:
    """Per source (how the event came in: its ``auth``): events decided and shared in the period,
    and its latest delivery ever (a source silent over the period still shows when it last spoke)."""
    bounds = _bounds(since, until)
    rows = read_rows(settings, audit_ref(settings), (
        "SELECT JSONExtractString(details, 'auth') AS auth, "  # noqa: S608 (PERIOD is a constant)
        f"uniqExactIf(event_id, {PERIOD}), uniqExactIf(event_id, outcome = 'shared' AND {PERIOD}), "
        "max(decided_at) FROM decisions "
        "WHERE venue_id = {venue:String} AND outcome != 'erased' GROUP BY auth ORDER BY auth"),
        {"venue": venue, **bounds})
    return [Source(str(a) or "?", int(n), int(s), _ts(last)) for a, n, s, last in rows]


@dataclass
class ConsentCount:
    purpose: str
    state: str
    count: int


@dataclass
class Expiry:
    purpose: str
    day: date
    count: int


def consents(settings: Settings, venue: str, since: date, until: date) -> list[ConsentCount]:
    """Consent changes recorded in the period per purpose and state (granted, withdrawn, expired…)."""
    rows = read_rows(settings, audit_ref(settings), (
        "SELECT purpose, event_type, uniqExact(event_id) FROM decisions WHERE venue_id = {venue:String} "  # noqa: S608
        f"AND outcome IN ('consent_recorded', 'consent_expired') AND reason = 'applied' AND {PERIOD} "
        "GROUP BY ALL ORDER BY purpose, event_type"), {"venue": venue, **_bounds(since, until)})
    return [ConsentCount(str(p), str(t), int(n)) for p, t, n in rows]


def expiries(settings: Settings, venue: str, days: int = 60, today: date | None = None) -> list[Expiry]:
    """Grants recorded about one consent lifetime ago, which lapse in the next ``days`` days
    unless renewed (lifetime per purpose: ``TECHNE_CONSENT_TTL_DAYS``, 395 days by default)."""
    today = today or datetime.now(UTC).date()
    longest = max([DEFAULT_TTL.days, *settings.consent_ttl_days.values()])
    start = today - timedelta(days=longest)
    rows = read_rows(settings, audit_ref(settings), (
        "SELECT purpose, toDate(decided_at) AS day, uniqExact(event_id) FROM decisions "
        "WHERE venue_id = {venue:String} AND outcome = 'consent_recorded' AND reason = 'applied' "
        "AND event_type = 'consent.granted' AND decided_at >= toDateTime64({start:String}, 6, 'UTC') "
        "GROUP BY ALL"), {"venue": venue, "start": f"{start.isoformat()} 00:00:00"})
    out = []
    for purpose, day, count in rows:
        ttl = settings.consent_ttl_days.get(str(purpose), DEFAULT_TTL.days)
        lapses = date.fromisoformat(str(day)) + timedelta(days=ttl)
        if today <= lapses <= today + timedelta(days=days):
            out.append(Expiry(str(purpose), lapses, int(count)))
    return sorted(out, key=lambda e: (e.day, e.purpose))
