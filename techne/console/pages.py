"""The console's reading pages: Ce que je partage (and its DPO print), Mes sources, Consentements
(and the preference-centre links), Analyses. Every read goes through :mod:`techne.console.data`
(the one read path) off the event loop; a store problem becomes a message on the page."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from core.errors import StoreMissing, TechneError
from techne.console import data, i18n, uploads
from techne.console.web import (
    INSIGHTS_CACHE_S,
    REPORT_CSP,
    Console,
    checked_form,
    console_of,
    off_loop,
    period,
    venue_access,
)


async def _sharing_context(request: Request) -> dict[str, Any]:
    c, _, venue = venue_access(request)
    since, until = period(request)
    agreements = data.venue_agreements(c.settings, venue)
    partners = sorted({a.partner for a in agreements})
    share, error = await off_loop(data.sharing, c.settings, venue, since, until)
    withdrawals, error2 = await off_loop(data.withdrawals, c.settings, venue, since, until)
    tables, error3 = await off_loop(data.partner_rows, c.settings, venue, partners)
    from streams.summary import FIELD_TEXT, PURPOSE_TEXT, describe

    lang = request.state.lang
    return {"venue": venue, "since": since, "until": until, "share": share, "withdrawals": withdrawals or [],
            "tables": tables or [], "error": error or error2 or error3, "agreements": agreements,
            "describe": lambda a: describe(a, lang), "field_text": FIELD_TEXT[lang], "purpose_text": PURPOSE_TEXT[lang],
            "stop_promise": data.STOP_PROMISE_S, "erase_promise": data.ERASE_PROMISE_S,
            "now": datetime.now(UTC)}


async def sharing_page(request: Request) -> Response:
    return console_of(request).render(request, "sharing.html", **await _sharing_context(request))


async def dpo_page(request: Request) -> Response:
    return console_of(request).render(request, "dpo.html", **await _sharing_context(request))


async def sources_page(request: Request) -> Response:
    c, _, venue = venue_access(request)
    since, until = period(request)
    found, error = await off_loop(data.sources, c.settings, venue, since, until)
    letters = await _dead_letters(c, venue)
    sent = [u for u in uploads.recent(c.settings, venue, limit=1000) if u.get("result")]
    in_period = [u for u in sent if since <= datetime.fromtimestamp(u["result"]["sent_at"], UTC).date() <= until]
    refused = {"csv-import": sum(int(u["result"]["rejected"]) for u in in_period)}
    csv_errors = [u for u in sent if u["result"].get("rejected")][:5]
    return c.render(request, "sources.html", venue=venue, since=since, until=until, sources=found or [],
                    error=error, letters=letters, csv_uploads=csv_errors, refused=refused)


async def _dead_letters(c: Console, venue: str, limit: int = 20) -> list[dict[str, str]] | None:
    """The latest dead letters of this venue's raw topic (worker stages), reason codes only."""
    from core.topics import raw_topic
    from streams import dlq

    source = raw_topic(venue)
    found: list[dict[str, str]] = []
    try:
        for stage in ("decode", "route"):
            letters = await asyncio.wait_for(dlq.read(c.settings.bootstrap, stage, limit=5000), 10)
            found += [{"reason": d.headers.get("techne-reason", "?"), "at": d.headers.get("techne-failed-at", ""),
                       "stage": stage} for d in letters if d.source_topic == source]
    except Exception:  # Kafka down or slow: the page still shows the rest
        return None
    return sorted(found, key=lambda d: d["at"], reverse=True)[:limit]


async def consents_page(request: Request) -> Response:
    c, _, venue = venue_access(request)
    since, until = period(request)
    counts, error = await off_loop(data.consents, c.settings, venue, since, until)
    coming, error2 = await off_loop(data.expiries, c.settings, venue)
    from streams.summary import PURPOSE_TEXT

    return c.render(request, "consents.html", venue=venue, since=since, until=until, counts=counts or [],
                    expiries=coming or [], error=error or error2,
                    purpose_text=PURPOSE_TEXT[request.state.lang])


async def preference_links(request: Request) -> Response:
    """The preference-centre link of each address given (one per line), as a CSV for the venue's
    newsletter tool (a merge field per recipient). Addresses are used in memory only, never kept."""
    from producers.gateway.preferences import preference_link

    c, _, venue = venue_access(request)
    form = await checked_form(request)
    text = str(form.get("emails", ""))[:2_000_000]
    emails = list(dict.fromkeys(e.strip().lower() for e in re.split(r"[\s,;]+", text) if "@" in e))
    key = c.settings.require_subject_key()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["email", "lien_preferences"])
    writer.writerows((e, preference_link(key, venue, e, c.console.gateway_url)) for e in emails)
    return Response(("\ufeff" + out.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=liens-preferences-{venue}.csv"})


def _insights_partner(c: Console, venue: str) -> str | None:
    from insights import PURPOSE

    mine = [a for a in data.venue_agreements(c.settings, venue) if PURPOSE in a.purposes]
    return sorted(a.partner for a in mine)[0] if mine else None


async def _release(c: Console, partner: str) -> Any:
    from insights.engine import compute

    cached = c.insights_cache.get(partner)
    if cached and time.monotonic() - cached[0] < INSIGHTS_CACHE_S:
        return cached[1]
    release = await asyncio.to_thread(compute, c.settings, partner)
    c.insights_cache[partner] = (time.monotonic(), release)
    return release


async def insights_page(request: Request) -> Response:
    c, _, venue = venue_access(request)
    partner = _insights_partner(c, venue)
    release, error = (None, None)
    if partner is not None:
        try:
            release = await _release(c, partner)
        except StoreMissing:
            error = i18n.translator(request.state.lang)("no_data_yet")
        except TechneError as exc:
            error = str(exc)[:300]
    return c.render(request, "insights.html", venue=venue, partner=partner, release=release, error=error)


async def insights_report(request: Request) -> Response:
    c, _, venue = venue_access(request)
    partner = _insights_partner(c, venue)
    if partner is None:
        raise HTTPException(404)
    from insights.html import report

    try:
        release = await _release(c, partner)
    except TechneError as exc:
        return PlainTextResponse(str(exc)[:300], status_code=503)
    response = HTMLResponse(report(release, request.state.lang))
    response.headers["Content-Security-Policy"] = REPORT_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


