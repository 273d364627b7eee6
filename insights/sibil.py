"""The quarterly SIBIL ticketing declaration of one venue, per performance (pure).

:func:`declare_orders` (the default source, ``techne sibil``) aggregates the lifecycle rows of
the venue's own store (see its docstring for how per-order rows replace the ticket ids);
:func:`declare` aggregates a venue's ticketing events (decoded records of its raw topic, see
:mod:`insights.sibil_source`, ``--from-topic``). Both give one :class:`Line` per performance
held in the quarter (Europe/Paris dates), with the :class:`Declarant` from the venue directory.
Rules of :func:`declare` (docs/sibil-mapping.md):

* events are taken once per ``event_id`` (re-deliveries);
* **ticket level** when the venue sends ``ticket.issued`` for an order: each ticket counts for its
  performance (after ``ticket.exchanged``, which moves it, with the price difference), as free if
  ``is_invitation`` or its price is 0, else as paid; tickets named by ``ticket.order_cancelled``
  or by ``ticket.order_refunded`` (``ticket_ids``; an empty list = the whole order) are not counted;
* **order level** otherwise (``ticket.order_placed`` only): ``quantity`` tickets, all free if
  ``is_invitation`` or the amount is 0, else all paid (a mixed paid/free order is counted as
  paid: an approximation the summary reports); cancellations remove ``quantity`` tickets (the
  whole order when their ``ticket_ids`` is empty); a refund of the whole order for at least its
  amount cancels it; a refund naming tickets removes that many (the larger of cancelled and
  refunded counts, as both usually describe the same tickets);
* **receipts** (incl. tax, booking fees excluded and reported apart) are what the venue kept:
  ticket prices (order level: ``amount_minor - booking_fee_minor``) minus every refund of the
  order, at least 0 per order. A ticket cancelled without refund keeps its receipt.

Events naming an order the venue never sent are counted in ``Declaration.notes`` and ignored.
No personal data is read: the source strips the subject block before records get here.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
TICKETING_TYPES = frozenset({"ticket.order_placed", "ticket.issued", "ticket.order_cancelled",
                             "ticket.order_refunded", "ticket.exchanged"})
FIELDS = ("order_id", "ticket_id", "ticket_ids", "production", "production_id", "performance_id", "performance_at",
          "discipline", "tariff", "quantity", "amount_minor", "booking_fee_minor", "price_minor", "is_invitation",
          "currency", "hall", "place_name", "place_postal_code", "festival", "old_ticket_id", "new_ticket_id",
          "old_performance_id", "new_performance_id", "new_performance_at", "price_difference_minor")
"""The only fields of a ticketing event the declaration reads (never the subject)."""
DOMAINS = {
    "theatre": "Théâtre", "danse": "Danse", "opera": "Art lyrique / opéra",
    "musique": "Musique classique, contemporaine", "musiques_actuelles": "Musiques actuelles", "cirque": "Cirque",
    "arts_de_la_rue": "Arts de la rue", "marionnette": "Marionnettes", "humour": "Humour / variétés",
    "pluridisciplinaire": "Pluridisciplinaire", "jeune_public": "Jeune public (préciser le domaine)", "autre": "Autre",
}
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _QUARTER.match(text.strip())
        if not match:
            raise ValueError(f"quarter {text!r}: expected YYYYQn, e.g. 2026Q4")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def next_first_day(self) -> date:
        return date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)

    def holds(self, when: datetime) -> bool:
        return self.first_day <= when.astimezone(PARIS).date() < self.next_first_day

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"


@dataclass
class Line:
    """One performance of the declaration."""

    performance_id: str
    production: str = ""
    discipline: str = ""
    performance_at: datetime | None = None
    hall: str = ""
    place_name: str = ""
    place_postal_code: str = ""
    festival: str = ""
    currency: str = "EUR"
    paid: int = 0
    free: int = 0
    receipts_minor: int = 0
    fees_minor: int = 0

    @property
    def domain(self) -> str:
        return DOMAINS.get(self.discipline, self.discipline)


@dataclass(frozen=True)
class Declarant:
    """Who declares (from the venue directory, :class:`core.venues.Venue`)."""

    name: str
    siret: str = ""
    place_type: str = ""
    city: str = ""

    def missing(self) -> list[str]:
        return [f for f in ("siret", "place_type") if not getattr(self, f)]


@dataclass
class Declaration:
    venue: str
    quarter: Quarter
    lines: list[Line]
    notes: dict[str, int] = field(default_factory=dict)
    declarant: Declarant | None = None

    def totals(self) -> dict[str, int]:
        return {"performances": len(self.lines), "paid": sum(x.paid for x in self.lines),
                "free": sum(x.free for x in self.lines), "receipts_minor": sum(x.receipts_minor for x in self.lines),
                "fees_minor": sum(x.fees_minor for x in self.lines)}


def strip(record: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the declaration needs, plus event id, type and venue (drops the subject)."""
    return {"event_id": str(record.get("event_id")), "event_type": record.get("event_type"),
            "venue_id": record.get("venue_id"), **{k: record[k] for k in FIELDS if record.get(k) is not None}}


@dataclass
class _Ticket:
    order_id: str
    performance_id: str
    price: int
    free: bool


def _describe(line: Line, event: Mapping[str, Any]) -> None:
    """Fill the performance's descriptive fields the line does not have yet."""
    for name in ("production", "discipline", "hall", "place_name", "place_postal_code", "festival", "currency"):
        value = event.get(name)
        if value and (name == "currency" or not getattr(line, name)):
            setattr(line, name, str(value))
    if event.get("performance_at") is not None and line.performance_at is None:
        line.performance_at = event["performance_at"]


def declare(events: Iterable[Mapping[str, Any]], venue: str, quarter: Quarter) -> Declaration:
    """Aggregate ``venue``'s ticketing events into the quarter's declaration (see module doc)."""
    seen: set[str] = set()
    by_type: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        if event.get("venue_id") != venue or event.get("event_type") not in TICKETING_TYPES:
            continue
        if str(event.get("event_id")) in seen:
            continue
        seen.add(str(event.get("event_id")))
        by_type[str(event["event_type"])].append(event)
    lines: dict[str, Line] = {}
    notes: dict[str, int] = defaultdict(int)

    def line(performance_id: str, described_by: Mapping[str, Any] | None = None) -> Line:
        found = lines.setdefault(performance_id, Line(performance_id))
        if described_by is not None:
            _describe(found, described_by)
        return found

    orders = {str(o["order_id"]): o for o in by_type["ticket.order_placed"]}
    tickets: dict[str, _Ticket] = {}
    for issued in by_type["ticket.issued"]:
        line(str(issued["performance_id"]), issued)
        price = int(issued["price_minor"])
        tickets[str(issued["ticket_id"])] = _Ticket(str(issued["order_id"]), str(issued["performance_id"]), price,
                                                    bool(issued.get("is_invitation")) or price == 0)
    for o in orders.values():
        line(str(o["performance_id"]), o)
    for x in by_type["ticket.exchanged"]:
        old = tickets.pop(str(x["old_ticket_id"]), None)
        if old is None:
            notes["exchange_of_unknown_ticket"] += 1
            continue
        new = line(str(x["new_performance_id"]))
        if new.performance_at is None:
            new.performance_at = x.get("new_performance_at")
        _describe(new, {k: v for k, v in vars(lines[old.performance_id]).items() if k != "performance_at"})
        tickets[str(x["new_ticket_id"])] = _Ticket(old.order_id, str(x["new_performance_id"]),
                                                   old.price + int(x.get("price_difference_minor") or 0), old.free)
    ticket_orders = {t.order_id for t in tickets.values()}
    removed: dict[str, set[str]] = defaultdict(set)
    whole: set[str] = set()
    cancelled_qty: dict[str, int] = defaultdict(int)
    refunded_qty: dict[str, int] = defaultdict(int)
    refunds: dict[str, int] = defaultdict(int)
    for c in by_type["ticket.order_cancelled"]:
        order_id, ids = str(c["order_id"]), [str(i) for i in c.get("ticket_ids") or []]
        if order_id not in orders and order_id not in ticket_orders:
            notes["cancellation_of_unknown_order"] += 1
            continue
        removed[order_id].update(ids)
        cancelled_qty[order_id] += len(ids) or int(c.get("quantity") or 0)
        if not ids and (order_id in ticket_orders or int(c.get("quantity") or 0) >= int(
                orders.get(order_id, {}).get("quantity") or 0)):
            whole.add(order_id)
    for r in by_type["ticket.order_refunded"]:
        order_id, ids = str(r["order_id"]), [str(i) for i in r.get("ticket_ids") or []]
        if order_id not in orders and order_id not in ticket_orders:
            notes["refund_of_unknown_order"] += 1
            continue
        refunds[order_id] += int(r["amount_minor"])
        removed[order_id].update(ids)
        refunded_qty[order_id] += len(ids)
        if not ids:
            paid = int(orders[order_id]["amount_minor"]) if order_id in orders else sum(
                t.price for t in tickets.values() if t.order_id == order_id)
            if int(r["amount_minor"]) >= paid:
                whole.add(order_id)
    receipts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ticket_id, t in tickets.items():
        receipts[t.order_id][t.performance_id] += t.price
        if t.order_id in whole or ticket_id in removed[t.order_id]:
            continue
        target = lines[t.performance_id]
        if t.free:
            target.free += 1
        else:
            target.paid += 1
    for order_id, o in orders.items():
        fees = int(o.get("booking_fee_minor") or 0)
        lines[str(o["performance_id"])].fees_minor += fees
        if order_id in ticket_orders:
            continue
        notes["order_level_orders"] += 1
        amount = int(o["amount_minor"])
        receipts[order_id][str(o["performance_id"])] += amount - fees
        gone = int(o["quantity"]) if order_id in whole else min(
            int(o["quantity"]), max(cancelled_qty[order_id], refunded_qty[order_id]))
        counted = int(o["quantity"]) - gone
        target = lines[str(o["performance_id"])]
        if o.get("is_invitation") or amount == 0:
            target.free += counted
        else:
            target.paid += counted
    for order_id, per_performance in receipts.items():
        gross = sum(per_performance.values())
        kept, allocated = max(0, gross - refunds[order_id]), 0
        items = sorted(per_performance.items())
        for i, (performance_id, amount) in enumerate(items):  # refunds spread in proportion
            share = kept - allocated if i == len(items) - 1 else (kept * amount // gross if gross else 0)
            allocated += share
            lines[performance_id].receipts_minor += share
    kept_lines = [x for x in lines.values() if x.performance_at is not None and quarter.holds(x.performance_at)]
    notes["no_performance_date"] = sum(1 for x in lines.values() if x.performance_at is None)
    kept_lines.sort(key=lambda x: (x.performance_at or datetime.min.replace(tzinfo=UTC), x.performance_id))
    return Declaration(venue, quarter, kept_lines, {k: v for k, v in notes.items() if v})


CSV_HEADER = ("siret_declarant", "nom_declarant", "type_lieu",
              "representation", "spectacle", "domaine", "discipline", "date", "heure", "salle", "lieu_hors_les_murs",
              "code_postal_lieu", "festival", "billets_payants", "billets_exoneres", "billets_total",
              "recette_ttc", "prix_moyen_ttc", "frais_de_location", "devise")


def _money(minor: int) -> str:
    return f"{minor / 100:.2f}"


def to_csv(declaration: Declaration) -> str:
    """Semicolon-separated, one line per performance, local dates, amounts in currency units."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_HEADER)
    who = declaration.declarant or Declarant(declaration.venue)
    for x in declaration.lines:
        local = x.performance_at.astimezone(PARIS) if x.performance_at else None
        writer.writerow([who.siret, who.name, who.place_type, x.performance_id, x.production, x.domain, x.discipline,
                         local.strftime("%Y-%m-%d") if local else "", local.strftime("%H:%M") if local else "",
                         x.hall, x.place_name, x.place_postal_code, x.festival, x.paid, x.free, x.paid + x.free,
                         _money(x.receipts_minor), _money(x.receipts_minor // x.paid) if x.paid else "",
                         _money(x.fees_minor), x.currency])
    return out.getvalue()


NOTE_TEXT = {
    "fr": {"order_level_orders": "commandes sans détail des billets (comptées au niveau de la commande)",
           "cancellation_of_unknown_order": "annulations d'une commande inconnue (ignorées)",
           "refund_of_unknown_order": "remboursements d'une commande inconnue (ignorés)",
           "exchange_of_unknown_ticket": "échanges d'un billet inconnu (ignorés)",
           "no_performance_date": "représentations sans date (non déclarées)",
           "partial_refund_kept": "remboursements partiels sans billet identifiable (recette réduite, billets "
                                  "maintenus)",
           "fees_unknown": "commandes dont les frais de location ne sont pas connus de la base du lieu (inclus "
                           "dans la recette s'ils font partie du montant)"},
    "en": {"order_level_orders": "orders without ticket detail (counted at order level)",
           "cancellation_of_unknown_order": "cancellations of an unknown order (ignored)",
           "refund_of_unknown_order": "refunds of an unknown order (ignored)",
           "exchange_of_unknown_ticket": "exchanges of an unknown ticket (ignored)",
           "no_performance_date": "performances without a date (not declared)",
           "partial_refund_kept": "partial refunds naming no identifiable ticket (receipts reduced, tickets kept)",
           "fees_unknown": "orders whose booking fees the venue store does not know (in the receipts if the "
                           "amount includes them)"},
}


def summary(declaration: Declaration, lang: str = "fr", warnings: Iterable[str] = ()) -> str:
    """A readable summary: one line per performance, totals, notes and warnings."""
    fr = lang == "fr"
    title = (f"Déclaration SIBIL de {declaration.venue}, {declaration.quarter}" if fr
             else f"SIBIL declaration of {declaration.venue}, {declaration.quarter}")
    out = [title, "=" * len(title)]
    if declaration.declarant is not None:
        who = declaration.declarant
        missing = "—"
        out.append(f"Déclarant : {who.name}, SIRET {who.siret or missing}, type de lieu : {who.place_type or missing}"
                    if fr else f"Declarant: {who.name}, SIRET {who.siret or missing}, type of place: "
                               f"{who.place_type or missing}")
        for name in who.missing():
            label = {"siret": "SIRET", "place_type": "type de lieu" if fr else "type of place"}[name]
            out.append(f"  ! {label} " + ("manquant dans l’annuaire des lieux (deploy/venues.yaml)" if fr
                                          else "missing from the venue directory (deploy/venues.yaml)"))
    for x in declaration.lines:
        local = x.performance_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if x.performance_at else "?"
        out.append(f"{local}  {x.production or x.performance_id}  ({x.domain})"
                   + (f", {x.hall}" if x.hall else "") + (f", {x.place_name}" if x.place_name else ""))
        out.append(f"    {'payants' if fr else 'paid'} {x.paid}, {'exonérés' if fr else 'free'} {x.free}, "
                   f"{'recette TTC' if fr else 'receipts incl. tax'} {_money(x.receipts_minor)} {x.currency}")
    totals = declaration.totals()
    out.append("")
    out.append((f"{totals['performances']} représentation(s), {totals['paid']} billet(s) payant(s), "
                f"{totals['free']} exonéré(s), recette TTC {_money(totals['receipts_minor'])} "
                f"(frais de location à part : {_money(totals['fees_minor'])})") if fr else
               (f"{totals['performances']} performance(s), {totals['paid']} paid ticket(s), {totals['free']} free, "
                f"receipts incl. tax {_money(totals['receipts_minor'])} "
                f"(booking fees apart: {_money(totals['fees_minor'])})"))
    for key, n in declaration.notes.items():
        out.append(f"  · {n} {NOTE_TEXT[lang].get(key, key)}")
    for w in warnings:
        out.append(f"  ! {w}")
    return "\n".join(out)


@dataclass
class _Held:
    """One ticket of an order, as the venue store's lifecycle rows let it be followed."""

    performance_id: str
    price: int
    free: bool
    live: bool = True


def _split(amount: int, n: int) -> list[int]:
    """``amount`` over ``n`` tickets, the first ones taking the remainder (sums back exactly)."""
    base, extra = divmod(amount, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def _matching(held: list[_Held], amount: int) -> list[_Held]:
    """Live paid tickets whose prices sum exactly to ``amount`` (dearest first), or none."""
    chosen, rest = [], amount
    for t in sorted((t for t in held if t.live and not t.free), key=lambda t: -t.price):
        if 0 < t.price <= rest:
            chosen.append(t)
            rest -= t.price
    return chosen if rest == 0 and chosen else []


def declare_orders(rows: Iterable[Mapping[str, Any]], venue: str, quarter: Quarter,
                   declarant: Declarant | None = None) -> Declaration:
    """The declaration from the venue's own store: ``rows`` are its ``ticket_orders`` lifecycle
    rows (:data:`STORE_COLUMNS`; one per event, ``order_ref`` the pseudonymized order, ``status``
    placed / paid / issued / cancelled / refunded / exchanged). The store keeps no ticket id, so
    the ticket-by-ticket rules of :func:`declare` become per-order ones (docs/sibil-mapping.md):

    * an order's tickets are its ``issued`` rows when it has any (price ``amount_minor``; an order
      known only by its tickets, as Billetweb and Weezevent send it, counts the same), else
      ``quantity`` tickets sharing the ``placed`` row's ``amount_minor`` (all free if
      ``is_invitation`` or an amount of 0); an order with neither is unknown (noted, ignored);
    * an ``exchanged`` row moves one live ticket of the order not already at the new performance
      to it (exact when the order's tickets share a performance), with the price difference;
    * a ``cancelled`` row removes ``quantity`` tickets (all without a quantity); a ``refunded`` row
      removes the live paid tickets whose prices add up exactly to its amount (the whole order for
      at least its amount), else it is a partial refund (receipts reduced, tickets kept); an
      order's cancellations and refunds describe the same tickets: the larger count is removed;
    * receipts: ticket prices minus the order's refunds (at least 0), spread over performances
      in proportion; booking fees are not in the store (``fees_minor`` 0, noted).
    """
    orders: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for row in rows:
        if row.get("venue_id") != venue or str(row.get("event_id")) in seen:
            continue
        seen.add(str(row.get("event_id")))
        orders[str(row.get("order_ref") or row.get("event_id"))].append(row)
    lines: dict[str, Line] = {}
    notes: dict[str, int] = defaultdict(int)

    def line(performance_id: str, described_by: Mapping[str, Any] | None = None) -> Line:
        found = lines.setdefault(performance_id, Line(performance_id))
        if described_by is not None:
            _describe(found, described_by)
        return found

    for events in orders.values():  # every performance described by its own rows first
        events.sort(key=lambda r: (r["occurred_at"], str(r["event_id"])))
        for r in events:
            if r.get("performance_id") is not None and r.get("status") != "exchanged":
                line(str(r["performance_id"]), r)
    for events in orders.values():
        placed = next((r for r in events if (r.get("status") or "placed") == "placed"), None)
        default_performance = placed.get("performance_id") if placed is not None else None
        issued = [r for r in events if r.get("status") == "issued"
                  and (r.get("performance_id") or default_performance) is not None]
        if not issued and default_performance is None:  # neither tickets nor an order naming a performance
            notes["refund_of_unknown_order" if any(r.get("status") == "refunded" for r in events)
                  else "cancellation_of_unknown_order"] += 1
            continue
        notes["fees_unknown"] += 1
        if issued:  # ticket level (also an order known only by its tickets: Billetweb, Weezevent)
            held = [_Held(str(r.get("performance_id") or default_performance), int(r.get("amount_minor") or 0),
                          bool(r.get("is_invitation")) or not int(r.get("amount_minor") or 0)) for r in issued]
        else:
            assert placed is not None
            notes["order_level_orders"] += 1
            amount, quantity = int(placed.get("amount_minor") or 0), max(1, int(placed.get("quantity") or 1))
            free = bool(placed.get("is_invitation")) or amount == 0
            held = [_Held(str(placed["performance_id"]), price, free) for price in _split(amount, quantity)]
        refunds, cancelled = 0, 0
        for r in events:
            status = r.get("status")
            if status == "exchanged" and r.get("performance_id") is not None:
                target = str(r["performance_id"])
                moved = next((t for t in held if t.live and t.performance_id != target), None)
                if moved is None:
                    notes["exchange_of_unknown_ticket"] += 1
                    continue
                new = line(target)
                if new.performance_at is None:
                    new.performance_at = r.get("performance_at")
                _describe(new, {k: v for k, v in vars(lines[moved.performance_id]).items() if k != "performance_at"})
                moved.performance_id, moved.price = target, moved.price + int(r.get("amount_minor") or 0)
            elif status == "cancelled":
                cancelled += int(r.get("quantity") or 0) or len(held)
            elif status == "refunded":
                amount = int(r.get("amount_minor") or 0)
                refunds += amount
                gone = held if amount >= sum(t.price for t in held) > 0 else _matching(held, amount)
                if not gone:
                    notes["partial_refund_kept"] += 1
                for t in gone:
                    t.live = False
        refunded = sum(1 for t in held if not t.live)
        for t in [t for t in reversed(held) if t.live][:max(0, cancelled - refunded)]:
            t.live = False  # cancellations and refunds describe the same tickets: the larger count goes
        per_performance: dict[str, int] = defaultdict(int)
        for t in held:
            per_performance[t.performance_id] += t.price
            if t.live:
                target_line = lines[t.performance_id]
                if t.free:
                    target_line.free += 1
                else:
                    target_line.paid += 1
        gross = sum(per_performance.values())
        kept, allocated = max(0, gross - refunds), 0
        items = sorted(per_performance.items())
        for i, (performance_id, amount) in enumerate(items):
            share = kept - allocated if i == len(items) - 1 else (kept * amount // gross if gross else 0)
            allocated += share
            lines[performance_id].receipts_minor += share
    kept_lines = [x for x in lines.values() if x.performance_at is not None and quarter.holds(x.performance_at)]
    notes["no_performance_date"] = sum(1 for x in lines.values() if x.performance_at is None)
    kept_lines.sort(key=lambda x: (x.performance_at or datetime.min.replace(tzinfo=UTC), x.performance_id))
    return Declaration(venue, quarter, kept_lines, {k: v for k, v in notes.items() if v}, declarant)


STORE_COLUMNS = ("event_id", "venue_id", "occurred_at", "status", "order_ref", "performance_id", "performance_at",
                 "production", "discipline", "hall", "quantity", "amount_minor", "currency", "is_invitation")
"""The columns of the venue store's ``ticket_orders`` the declaration reads (never the pseudonym)."""
