"""Text tables and JSON of a protected release (pure).

Only published cells are listed, with their keys; a suppressed cell is never named (naming it
would say that a few persons exist there): the output says how many cells were suppressed and
why. ``--season`` / ``--venue`` select rows of the release, they never re-aggregate.
"""

from __future__ import annotations

from typing import Any

from insights.cells import ALL, FREQUENCY, KEY_FIELDS, Cell
from insights.engine import Release
from insights.i18n import season_label, t
from insights.views import DIRECT, FUNNEL_STEPS, UNKNOWN, UNTRACKED

LOYALTY_MEASURES = ("spectators", "first_time", "returning", *FREQUENCY, "lapsed")
LEAD_MEASURES = ("p25_days", "median_days", "p75_days")


def _selected(cell: Cell, season: int | None, venue: str | None) -> bool:
    keys = cell.keys()
    if season is not None and "season" in keys and keys["season"] != season:
        return False
    if venue is not None:
        venues = [keys[f] for f in ("venue", "venue_a", "venue_b") if f in keys]
        if venues and venue not in venues:
            return False
    return True


def published(release: Release, insight: str, season: int | None = None, venue: str | None = None) -> list[Cell]:
    """Published cells of ``insight``, selected by season / venue."""
    return [c for c in release.cells(insight)
            if release.protected.published(c.id) and _selected(c, season, venue)]


def cell_json(cell: Cell) -> dict[str, Any]:
    out: dict[str, Any] = {**cell.keys(), "persons": cell.size}
    if "season" in out:
        out["season_label"] = season_label(int(out["season"]))
    out.update(dict(cell.measures))
    return out


def insight_json(release: Release, insight: str, season: int | None = None, venue: str | None = None) -> dict[str, Any]:
    return {
        "insight": insight, "partner": release.partner, "k": release.k,
        "generated_at": release.generated_at.isoformat(timespec="seconds"),
        "available": insight not in release.unavailable, "missing": release.unavailable.get(insight, []),
        "cells": [cell_json(c) for c in published(release, insight, season, venue)],
        "protection": release.protected.counts(insight),
        **({"not_comparable": [list(p) for p in release.not_comparable]} if insight == "overlap" else {}),
        **({"spend": [{"venue": v, "month": m, "channel": c, "spend_minor": n}
                      for (v, m, c), n in sorted(release.spend.items()) if venue in (None, v)]}
           if insight == "acquisition" else {}),
    }


def money(minor: int, lang: str) -> str:
    """``123456`` -> ``1 234,56 €`` (fr) / ``€1,234.56`` (en)."""
    if lang == "fr":
        return f"{minor / 100:,.2f}".replace(",", "\u202f").replace(".", ",") + " €"
    return f"€{minor / 100:,.2f}"


def acquisition_rows(release: Release, lang: str, venue: str | None = None) -> tuple[list[str], list[list[str]]]:
    """New spectators, ad spend and cost per new spectator per venue, month and channel: a row per
    published count or per spend (a spend is no person: shown even where the count is hidden,
    then without a cost); ``*`` is every channel (all the month's spend)."""
    counts: dict[tuple[str, ...], int] = {tuple(map(str, c.key)): c.size
                                          for c in published(release, "acquisition", None, venue)}
    spend: dict[tuple[str, ...], int] = {k: n for k, n in release.spend.items() if venue in (None, k[0])}
    for (v, m, _), minor in list(spend.items()):
        spend[(v, m, ALL)] = spend.get((v, m, ALL), 0) + minor
    header = [t(lang, f) for f in ("venue", "month", "channel", "new_buyers", "spend", "cost_per_new")]
    body = []
    for key in sorted(set(counts) | set(spend), key=lambda k: (k[0], k[1], k[2] != ALL, k[2])):
        n, cost = counts.get(key), spend.get(key)
        body.append([str(key[0]), str(key[1]), _channel(lang, str(key[2])), str(n) if n is not None else "—",
                     money(cost, lang) if cost is not None else "—",
                     money(cost // n, lang) if cost is not None and n else "—"])
    return header, body


def _channel(lang: str, channel: str) -> str:
    if channel == ALL:
        return t(lang, "all_channels")
    return t(lang, channel) if channel in (UNTRACKED, DIRECT) else channel


def browsing_rows(release: Release, lang: str, venue: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Pages and contents seen before a first order, most seen first, with their share of the
    first-time buyers who saw anything (``*``) when both are published."""
    cells = published(release, "web_before_purchase", None, venue)
    base = {str(c.key[0]): c.size for c in cells if c.key[1] == ALL}
    header = [t(lang, f) for f in ("venue", "kind", "item", "persons", "share")]
    body = [[str(c.key[0]), t(lang, "any_touch") if c.key[1] == ALL else t(lang, str(c.key[1])),
             "—" if c.key[2] == ALL else str(c.key[2]), str(c.size),
             f"{round(100 * c.size / base[str(c.key[0])])} %" if str(c.key[0]) in base else "—"]
            for c in sorted(cells, key=lambda c: (str(c.key[0]), c.key[1] != ALL, -c.size, str(c.key[2])))]
    return header, body


def _label(lang: str, field: str, value: str | int) -> str:
    if field == "season":
        return season_label(int(value))
    if value == ALL:
        return t(lang, "any_tariff" if field == "tariff" else "all")
    if value == UNKNOWN:
        return t(lang, "unknown")
    return str(value)


def rows(release: Release, insight: str, lang: str, season: int | None = None,
         venue: str | None = None) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the insight's table; wide tables pivot the ``measure`` key."""
    if insight == "acquisition":
        return acquisition_rows(release, lang, venue)
    if insight == "web_before_purchase":
        return browsing_rows(release, lang, venue)
    cells = published(release, insight, season, venue)
    fields = KEY_FIELDS[insight]
    if insight in ("loyalty", "conversion", "attendance", "campaign_funnel"):
        measures = {"loyalty": LOYALTY_MEASURES, "conversion": ("clicked", "converted", "rate"),
                    "attendance": ("holders", "attended", "no_show", "no_show_rate"),
                    "campaign_funnel": FUNNEL_STEPS}[insight]
        grouped: dict[tuple[str | int, ...], dict[str, int]] = {}
        for c in cells:
            grouped.setdefault(c.key[:2], {})[str(c.key[2])] = c.size
        for values in grouped.values():
            if insight == "conversion" and "clicked" in values and "converted" in values:
                values["rate"] = round(100 * values["converted"] / values["clicked"])
            if insight == "attendance" and "holders" in values and "no_show" in values:
                values["no_show_rate"] = round(100 * values["no_show"] / values["holders"])
        header = [t(lang, f) for f in fields[:2]] + [t(lang, m) for m in measures]
        body = [[_label(lang, f, v) for f, v in zip(fields[:2], key, strict=True)]
                + [(f"{values[m]} %" if m.endswith("rate") else str(values[m])) if m in values else "—"
                   for m in measures]
                for key, values in sorted(grouped.items(), key=lambda i: (str(i[0][0]), i[0][1] != ALL, str(i[0][1])))]
        return header, body
    header = [t(lang, f) for f in fields] + [t(lang, "persons")]
    if insight == "lead_time":
        header += [t(lang, m) for m in LEAD_MEASURES]
    body = []
    for c in sorted(cells, key=lambda c: tuple(str(k) for k in c.key)):
        line = [_label(lang, f, v) for f, v in zip(fields, c.key, strict=True)] + [str(c.size)]
        line += [str(dict(c.measures)[m]) for m in LEAD_MEASURES] if insight == "lead_time" else []
        body.append(line)
    return header, body


def table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) if v[:1].isdigit() or v == "—" else v.ljust(w)
                        for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def text(release: Release, insight: str, lang: str = "fr", season: int | None = None,
         venue: str | None = None) -> str:
    """The insight as a titled text table, with the protection line."""
    title = t(lang, insight)
    out = [title, "=" * len(title)]
    if insight in release.unavailable:
        out.append(t(lang, "unavailable", what=", ".join(release.unavailable[insight])))
        return "\n".join(out)
    header, body = rows(release, insight, lang, season, venue)
    out.append(table(header, body) if body else t(lang, "empty"))
    out.append("")
    out.append(t(lang, "suppressed_line", k=release.k, **release.protected.counts(insight)))
    if insight == "overlap" and release.not_comparable:
        out.append(t(lang, "not_comparable", pairs=", ".join(f"{a}/{b}" for a, b in release.not_comparable)))
    return "\n".join(out)
