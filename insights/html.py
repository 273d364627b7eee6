"""The insights as one self-contained HTML page (pure): inline SVG charts, inline CSS, a few
lines of inline script, no external resource (no CDN, no font, no image URL).

Charts (for one season, the latest by default): the overlap heatmap venues x venues, the
spectators by département (all venues) as a bar chart, the loyalty funnel (all venues), the cost
per new spectator by venue and channel for the latest month with ad spend (a hatched bar where
the count of new spectators is suppressed: the spend is known, the cost is not shown); then
every insight as a table. Only published cells of the protected release appear: a suppressed
cell is drawn empty/hatched, never with a number. After load, the script checks that every chart
has a rendered size and sets ``data-rendered="ok"`` on ``<body>`` (``"error: ..."`` otherwise, or
on any script error): the headless-browser test reads that marker.
"""

from __future__ import annotations

from datetime import UTC
from html import escape

from insights.cells import ALL, INSIGHTS
from insights.engine import Release
from insights.i18n import season_label, t
from insights.render import money, published, rows
from insights.views import UNKNOWN

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2330;
background:#f6f7fb}
header{background:#1d3557;color:#fff;padding:20px 32px}header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;opacity:.85}main{padding:16px 32px;max-width:1200px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:18px;margin:0 0 12px}.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.charts section{margin:0}.wide{grid-column:1 / span 2}svg text{font-size:12px;fill:#1d2330}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #e3e6ee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#5a6275;font-size:13px}
"""
SCRIPT = """
window.addEventListener('error', function (e) { document.body.dataset.rendered = 'error: ' + e.message; });
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('svg[data-chart]'), bad = [];
  charts.forEach(function (svg) {
    var b = svg.getBBox();
    if (!(b.width > 0 && b.height > 0)) bad.push(svg.dataset.chart);
  });
  if (charts.length !== 4) bad.push('expected 4 charts, found ' + charts.length);
  if (!document.body.dataset.rendered) document.body.dataset.rendered = bad.length ? 'error: ' + bad.join(', ') : 'ok';
});
"""


def _blend(share: float) -> str:
    """White to deep blue."""
    r, g, b = (int(255 + (c - 255) * share) for c in (29, 53, 87))
    return f"rgb({r},{g},{b})"


def heatmap(release: Release, season: int, lang: str) -> str:
    venues = release.venues
    values = {(str(c.key[1]), str(c.key[2])): c.size for c in published(release, "overlap", season)}
    for (a, b), n in list(values.items()):
        values[(b, a)] = n
    off = [v for (a, b), v in values.items() if a != b] or [1]
    size, left, top = 64, 110, 90
    width, height = left + size * len(venues) + 60, top + size * len(venues) + 10
    parts = [f'<svg data-chart="heatmap" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#c9ced8" stroke-width="2"/>'
             '</pattern></defs>']
    for i, name in enumerate(venues):
        y = top + i * size + size / 2 + 4
        parts.append(f'<text x="{left - 6}" y="{y}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<text transform="translate({left + i * size + size / 2},{top - 8}) rotate(-35)">'
                     f'{escape(name)}</text>')
    for i, a in enumerate(venues):
        for j, b in enumerate(venues):
            x, y = left + j * size, top + i * size
            value = values.get((a, b))
            if value is None:
                fill, label = "url(#hatch)", "—"
            elif a == b:
                fill, label = "#e9c46a", str(value)
            else:
                fill, label = _blend(min(1.0, value / max(off))), str(value)
            colour = "#fff" if value is not None and a != b and value / max(off) > 0.55 else "#1d2330"
            title = f"{a} × {b}: {label}"
            parts.append(f'<rect x="{x}" y="{y}" width="{size - 2}" height="{size - 2}" fill="{fill}">'
                         f'<title>{escape(title)}</title></rect>')
            parts.append(f'<text x="{x + size / 2 - 1}" y="{y + size / 2 + 4}" text-anchor="middle" '
                         f'style="fill:{colour}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(release: Release, season: int, lang: str, top_n: int = 15) -> str:
    cells = [c for c in published(release, "geography", season) if c.key[1] == ALL]
    cells.sort(key=lambda c: -c.size)
    shown = cells[:top_n]
    hidden = sum(1 for cid in release.protected.suppressed
                 if cid[0] == "geography" and cid[1][0] == season and cid[1][1] == ALL)
    bar_h, left, width = 22, 120, 520
    height = 20 + bar_h * max(len(shown), 1) + 30
    top = max((c.size for c in shown), default=1)
    parts = [f'<svg data-chart="departements" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">']
    if not shown:
        parts.append(f'<text x="10" y="30">{escape(t(lang, "no_data"))}</text>')
    for i, c in enumerate(shown):
        y = 10 + i * bar_h
        w = (width - left - 60) * c.size / top
        name = t(lang, "unknown") if c.key[2] == UNKNOWN else str(c.key[2])
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="#457b9d">'
                     f'<title>{escape(name)}: {c.size}</title></rect>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}">{c.size}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}" class="note">{escape(t(lang, "other_depts", n=hidden))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def funnel_stages(release: Release, season: int) -> list[tuple[str, int | None]]:
    """Spectators, then 2+, 3+, 6+ performances (sums of published frequency buckets only)."""
    got = {str(c.key[2]): c.size for c in published(release, "loyalty", season) if c.key[1] == ALL}

    def total(*names: str) -> int | None:
        return sum(got[n] for n in names) if all(n in got for n in names) else None

    return [("funnel_all", got.get("spectators")), ("funnel_2", total("freq_2", "freq_3-5", "freq_6+")),
            ("funnel_3", total("freq_3-5", "freq_6+")), ("funnel_6", total("freq_6+"))]


def funnel(release: Release, season: int, lang: str) -> str:
    stages = funnel_stages(release, season)
    width, stage_h = 520, 54
    height = stage_h * len(stages) + 10
    top = stages[0][1] or 1
    parts = [f'<svg data-chart="funnel" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             '<defs><pattern id="hatch2" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#c9ced8" stroke-width="2"/>'
             '</pattern></defs>']
    for i, (key, value) in enumerate(stages):
        y = 5 + i * stage_h
        w = max(40.0, (width - 20) * (value or 0) / top) if value is not None else width - 20
        x = (width - w) / 2
        fill = "url(#hatch2)" if value is None else ["#1d3557", "#457b9d", "#7fb3d5", "#a8dadc"][i % 4]
        label = f"{t(lang, key)} : {value}" if lang == "fr" else f"{t(lang, key)}: {value}"
        if value is None:
            label = f"{t(lang, key)} {t(lang, 'masked')}"
        colour = "#fff" if value is not None and i < 2 and w > 7.5 * len(label) else "#1d2330"
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{stage_h - 8}" rx="4" fill="{fill}"/>')
        parts.append(f'<text x="{width / 2}" y="{y + stage_h / 2}" text-anchor="middle" '
                     f'style="fill:{colour}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def acquisition_chart(release: Release, lang: str) -> str:
    """Cost per new spectator, per venue and channel, for the latest month with ad spend."""
    months = sorted({m for _, m, _ in release.spend})
    month = months[-1] if months else None
    counts = {(str(c.key[0]), str(c.key[2])): c.size for c in published(release, "acquisition")
              if month is not None and c.key[1] == month}
    bars_ = sorted(((v, ch, n) for (v, m, ch), n in release.spend.items() if m == month),
                   key=lambda b: (b[0], b[1]))
    costs = [n // counts[(v, ch)] for v, ch, n in bars_ if (v, ch) in counts]
    top = max(costs, default=1) or 1
    bar_h, left, width = 22, 200, 520
    height = 20 + bar_h * max(len(bars_), 1) + 10
    parts = [f'<svg data-chart="acquisition" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><defs><pattern id="hatch3" width="6" height="6" '
             'patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" '
             'stroke="#c9ced8" stroke-width="2"/></pattern></defs>']
    if not bars_:
        parts.append(f'<text x="10" y="30">{escape(t(lang, "no_data"))}</text>')
    for i, (venue, channel, spend) in enumerate(bars_):
        y = 10 + i * bar_h
        name = f"{venue} · {channel}"
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>')
        if (venue, channel) in counts:
            cost = spend // counts[(venue, channel)]
            w = max(2.0, (width - left - 90) * cost / top)
            label = money(cost, lang)
            parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="#1d3557">'
                         f'<title>{escape(name)}: {escape(label)}</title></rect>')
        else:
            w, label = float(width - left - 90), t(lang, "masked_cost")
            parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="url(#hatch3)"/>')
        parts.append(f'<text x="{left + (w + 6 if label != t(lang, "masked_cost") else 6):.1f}" y="{y + 15}">'
                     f'{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cls(value: str) -> str:
    return "n" if value[:1].isdigit() or value == "—" else ""


def _table(release: Release, insight: str, lang: str, season: int | None) -> str:
    if insight in release.unavailable:
        return f'<p class="note">{escape(t(lang, "unavailable", what=", ".join(release.unavailable[insight])))}</p>'
    seasonal = insight in ("overlap", "loyalty", "geography", "crossover")
    header, body = rows(release, insight, lang, season if seasonal else None)
    if not body:
        return f'<p class="note">{escape(t(lang, "empty"))}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    lines = "".join("<tr>" + "".join(f'<td class="{_cls(v)}">{escape(v)}</td>' for v in r) + "</tr>" for r in body)
    counts = release.protected.counts(insight)
    note = t(lang, "suppressed_line", k=release.k, **counts)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table><p class="note">{escape(note)}</p>'


def report(release: Release, lang: str = "fr", season: int | None = None) -> str:
    """The whole page (see module doc)."""
    seasons = release.seasons
    season = season if season is not None else (seasons[-1] if seasons else 0)
    at = release.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = t(lang, "report_title")
    sections = "".join(
        f'<section id="{name}"><h2>{escape(t(lang, name))}</h2>{_table(release, name, lang, season)}</section>'
        for name in INSIGHTS)
    label = season_label(season)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body><header><h1>{escape(title)}</h1>
<p>{escape(t(lang, "report_sub", partner=release.partner, k=release.k, at=at))}</p></header>
<main><p class="note">{escape(t(lang, "protection", k=release.k))}</p>
<div class="charts">
<section class="wide"><h2>{escape(t(lang, "heatmap", season=label))}</h2>{heatmap(release, season, lang)}</section>
<section><h2>{escape(t(lang, "bars", season=label))}</h2>{bars(release, season, lang)}</section>
<section><h2>{escape(t(lang, "funnel", season=label))}</h2>{funnel(release, season, lang)}</section>
<section><h2>{escape(t(lang, "acquisition_chart"))}</h2>{acquisition_chart(release, lang)}</section>
</div>
{sections}
</main><script>{SCRIPT}</script></body></html>
"""
