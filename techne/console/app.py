"""The console's Starlette application: routes, access checks, server-side pages (Jinja2).

Access, for every route under ``/lieux/{venue}/``: no valid session -> redirect to
``/connexion`` (a JSON route answers 401); a venue that does not exist -> 404; a venue the user
may not see -> 403 (a venue's user sees only its own venue; an operator sees them all). Every
``POST`` (login included) needs the session's CSRF token in the form field ``csrf`` (403
otherwise). Responses are ``Cache-Control: no-store`` and carry a strict Content-Security-Policy
(no inline script; scripts and styles from ``/static`` only, except the self-contained insights
report, framed from the same origin only).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote as urlquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.errors import ConfigError, StoreMissing, TechneError
from core.settings import Settings
from core.venues import load_venues
from producers.csv_import import read_profile_table
from producers.csv_profiles import load_profile
from producers.spreadsheet import TableError
from techne.console import data, i18n, uploads
from techne.console.security import COOKIE, ConsoleSettings, LoginLimiter, Session, Sessions, console_secret, csrf_ok
from techne.console.users import User, UserStore

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'self'"
PERIOD_DAYS = 30
INSIGHTS_CACHE_S = 60.0


class LoginRequired(Exception):
    """No valid session on a page that needs one."""


class Console:
    """Everything the routes share: settings, stores, templates, the send queue."""

    def __init__(self, settings: Settings, console: ConsoleSettings, users: UserStore) -> None:
        self.settings, self.console, self.users = settings, console, users
        self.venues = load_venues(settings.venues_file)
        self.sessions = Sessions(console_secret(console, settings.data_dir), console.session_hours * 3600)
        self.limiter = LoginLimiter(console.login_attempts, console.login_window_s)
        self.sender = uploads.Sender(settings)
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape())
        self._insights: dict[tuple[str, str], tuple[float, Any]] = {}

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = request.state.lang
        context.update(t=i18n.translator(lang), lang=lang, pick=lambda table, key: i18n.pick(table, key, lang),
                       i18n=i18n, csrf=request.state.session.csrf, user=request.state.user, path=request.url.path,
                       venues=self.venues)
        return HTMLResponse(self.templates.get_template(name).render(**context), status_code=status)


class SessionMiddleware(BaseHTTPMiddleware):
    """Loads the signed session (anonymous if absent, forged or expired), the user and the language."""

    def __init__(self, app: Any, console: Console) -> None:
        super().__init__(app)
        self.c = console

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        c = self.c
        session = c.sessions.load(request.cookies.get(COOKIE))
        fresh = session is None
        request.state.session = session or Session.fresh()
        request.state.user = c.users.get(request.state.session.username) if request.state.session.username else None
        asked = request.query_params.get("lang")
        lang = asked if asked in i18n.LANGS else request.cookies.get("lang")
        request.state.lang = lang if lang in i18n.LANGS else "fr"
        response = await call_next(request)
        if fresh or getattr(request.state, "new_session", False):
            response.set_cookie(COOKIE, c.sessions.dump(request.state.session), max_age=int(c.sessions.max_age_s),
                                httponly=True, samesite="lax", secure=c.console.secure_cookies, path="/")
        if asked in i18n.LANGS:
            response.set_cookie("lang", asked, max_age=365 * 86400, samesite="lax", secure=c.console.secure_cookies)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response


def _c(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _user(request: Request) -> User:
    user: User | None = request.state.user
    if user is None:
        raise LoginRequired
    return user


def _venue(request: Request) -> tuple[Console, User, str]:
    """The venue of the path, if this session's user may see it (see module doc)."""
    c, user = _c(request), _user(request)
    venue = str(request.path_params["venue"])
    if venue not in c.venues:
        raise HTTPException(404)
    if not user.may_see(venue):
        raise HTTPException(403)
    return c, user, venue


async def _form(request: Request) -> Any:
    """The POSTed form, after the CSRF check."""
    c = _c(request)
    try:
        form = await request.form(max_files=1, max_fields=20, max_part_size=c.console.max_upload_bytes)
    except Exception:  # a malformed or oversized multipart body
        raise HTTPException(400) from None
    if not csrf_ok(request.state.session, form.get("csrf")):
        raise HTTPException(403, "csrf")
    return form


def _period(request: Request) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    try:
        until = date.fromisoformat(request.query_params.get("jusqu", "")) if request.query_params.get("jusqu") \
            else today
        since = date.fromisoformat(request.query_params.get("depuis", "")) if request.query_params.get("depuis") \
            else until - timedelta(days=PERIOD_DAYS)
    except ValueError:
        raise HTTPException(400) from None
    return (since, until) if since <= until else (until, since)


async def _off(fn: Callable[..., Any], *args: Any) -> Any:
    """Blocking reads off the event loop; a store problem becomes a message on the page."""
    try:
        return await asyncio.to_thread(fn, *args), None
    except StoreMissing:  # nothing stored yet: the page shows "nothing in this period"
        return None, None
    except TechneError as exc:
        return None, str(exc)[:300]


# --- login ---------------------------------------------------------------------------------------------------


NEXT_RE = re.compile(r"^/lieux/([a-z0-9-]+)(/[a-z0-9/_-]*)?$")


def _next(requested: object, user: User) -> str:
    """Where to go after signing in: the page asked for if it is one of the user's venue pages."""
    match = NEXT_RE.match(str(requested or ""))
    if match and user.may_see(match.group(1)):
        return str(requested)
    return "/lieux" if user.is_operator else f"/lieux/{user.venue}/partage"


async def login_form(request: Request) -> Response:
    return _c(request).render(request, "login.html", error=None, suite=request.query_params.get("suite", ""))


async def login(request: Request) -> Response:
    c = _c(request)
    form = await _form(request)
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))[:1024]
    client = request.client.host if request.client else "?"
    keys = (f"ip:{client}", f"user:{username}")
    t = i18n.translator(request.state.lang)
    wait = c.limiter.retry_after(*keys)
    if wait > 0:
        response = c.render(request, "login.html", 429, error=t("too_many", minutes=max(1, round(wait / 60))),
                            suite="")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await asyncio.to_thread(c.users.verify, username, password)
    if user is None:
        c.limiter.failed(*keys)
        return c.render(request, "login.html", 401, error=t("bad_login"), suite=str(form.get("suite", ""))[:200])
    c.limiter.succeeded(f"user:{username}")
    return _signed_in(request, user, form.get("suite"))


def _signed_in(request: Request, user: User, requested: object = None) -> Response:
    request.state.session = Session.fresh(user.username)
    request.state.new_session = True
    return RedirectResponse(_next(requested, user), status_code=303)


async def link_login(request: Request) -> Response:
    c = _c(request)
    user = await asyncio.to_thread(c.users.redeem_link, str(request.path_params["token"]))
    if user is None:
        t = i18n.translator(request.state.lang)
        return c.render(request, "login.html", 401, error=t("bad_link"), suite="")
    return _signed_in(request, user)


async def logout(request: Request) -> Response:
    await _form(request)
    request.state.session = Session.fresh()
    request.state.new_session = True
    return RedirectResponse("/connexion", status_code=303)


async def home(request: Request) -> Response:
    user = _user(request)
    return RedirectResponse("/lieux" if user.is_operator else f"/lieux/{user.venue}/partage", status_code=303)


async def venues_page(request: Request) -> Response:
    c, user = _c(request), _user(request)
    if not user.is_operator:
        return RedirectResponse(f"/lieux/{user.venue}/partage", status_code=303)
    return c.render(request, "venues.html")


async def venue_home(request: Request) -> Response:
    _, _, venue = _venue(request)
    return RedirectResponse(f"/lieux/{venue}/partage", status_code=303)


# --- pages ---------------------------------------------------------------------------------------------------


async def _sharing_context(request: Request) -> dict[str, Any]:
    c, _, venue = _venue(request)
    since, until = _period(request)
    agreements = data.venue_agreements(c.settings, venue)
    partners = sorted({a.partner for a in agreements})
    share, error = await _off(data.sharing, c.settings, venue, since, until)
    withdrawals, error2 = await _off(data.withdrawals, c.settings, venue, since, until)
    tables, error3 = await _off(data.partner_rows, c.settings, venue, partners)
    from streams.summary import FIELD_TEXT, PURPOSE_TEXT, describe

    lang = request.state.lang
    return {"venue": venue, "since": since, "until": until, "share": share, "withdrawals": withdrawals or [],
            "tables": tables or [], "error": error or error2 or error3, "agreements": agreements,
            "describe": lambda a: describe(a, lang), "field_text": FIELD_TEXT[lang], "purpose_text": PURPOSE_TEXT[lang],
            "stop_promise": data.STOP_PROMISE_S, "erase_promise": data.ERASE_PROMISE_S,
            "now": datetime.now(UTC)}


async def sharing_page(request: Request) -> Response:
    return _c(request).render(request, "sharing.html", **await _sharing_context(request))


async def dpo_page(request: Request) -> Response:
    return _c(request).render(request, "dpo.html", **await _sharing_context(request))


async def sources_page(request: Request) -> Response:
    c, _, venue = _venue(request)
    since, until = _period(request)
    found, error = await _off(data.sources, c.settings, venue, since, until)
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
    c, _, venue = _venue(request)
    since, until = _period(request)
    counts, error = await _off(data.consents, c.settings, venue, since, until)
    coming, error2 = await _off(data.expiries, c.settings, venue)
    from streams.summary import PURPOSE_TEXT

    return c.render(request, "consents.html", venue=venue, since=since, until=until, counts=counts or [],
                    expiries=coming or [], error=error or error2,
                    purpose_text=PURPOSE_TEXT[request.state.lang])


async def preference_links(request: Request) -> Response:
    """The preference-centre link of each address given (one per line), as a CSV for the venue's
    newsletter tool (a merge field per recipient). Addresses are used in memory only, never kept."""
    from producers.gateway.preferences import preference_link

    c, _, venue = _venue(request)
    form = await _form(request)
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

    cached = c._insights.get((partner, ""))
    if cached and time.monotonic() - cached[0] < INSIGHTS_CACHE_S:
        return cached[1]
    release = await asyncio.to_thread(compute, c.settings, partner)
    c._insights[(partner, "")] = (time.monotonic(), release)
    return release


async def insights_page(request: Request) -> Response:
    c, _, venue = _venue(request)
    partner = _insights_partner(c, venue)
    release, error = (None, None)
    if partner is not None:
        try:
            release = await _release(c, partner)
        except TechneError as exc:
            error = str(exc)[:300]
    return c.render(request, "insights.html", venue=venue, partner=partner, release=release, error=error)


async def insights_report(request: Request) -> Response:
    c, _, venue = _venue(request)
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


# --- import --------------------------------------------------------------------------------------------------


async def import_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    c, _, venue = _venue(request)
    return c.render(request, "import.html", status, venue=venue, profiles=uploads.profiles(), error=error,
                    recent=uploads.recent(c.settings, venue))


async def import_upload(request: Request) -> Response:
    c, user, venue = _venue(request)
    form = await _form(request)
    t = i18n.translator(request.state.lang)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await import_page(request, t("empty_file"), 400)
    raw = await upload.read(c.console.max_upload_bytes + 1)
    if len(raw) > c.console.max_upload_bytes:
        return await import_page(request, t("too_big", mb=c.console.max_upload_bytes // 1_048_576), 413)
    chosen = str(form.get("profile") or "auto")
    lang = request.state.lang
    try:
        if chosen == "auto":
            profile, problem = uploads.detect(raw, upload.filename)
        else:
            profile = load_profile(chosen)
            read_profile_table(raw, upload.filename, profile)
    except TableError as exc:
        return await import_page(request, t("unreadable", why=exc.message(lang)), 400)
    except ConfigError as exc:
        return await import_page(request, t("unreadable", why=str(exc)), 400)
    if profile is None:
        why = problem.message(lang) if problem is not None else t("empty_file")
        return await import_page(request, t("unreadable", why=why), 400)
    upload_id = uploads.save(c.settings, venue, upload.filename, raw, profile.name, user.username)
    return RedirectResponse(f"/lieux/{venue}/import/{upload_id}", status_code=303)


def _upload(request: Request) -> tuple[Console, str, str, dict[str, Any]]:
    c, _, venue = _venue(request)
    upload_id = str(request.path_params["upload_id"])
    meta = uploads.meta(c.settings, venue, upload_id)
    if meta is None:
        raise HTTPException(404)
    return c, venue, upload_id, meta


async def _analysis(request: Request) -> tuple[Console, str, str, dict[str, Any], Any]:
    """The upload of the path analysed (dry run); a file that cannot be read gives ``None``."""
    c, venue, upload_id, meta = _upload(request)
    raw = uploads.data(c.settings, venue, upload_id) or b""
    try:
        profile = load_profile(meta["profile"])
        analysis = await asyncio.to_thread(uploads.analyse, c.settings, venue, raw, meta["filename"], profile)
    except TableError as exc:
        return c, venue, upload_id, meta, exc.message(request.state.lang)
    except ConfigError as exc:
        return c, venue, upload_id, meta, str(exc)
    return c, venue, upload_id, meta, analysis


async def upload_page(request: Request) -> Response:
    c, venue, upload_id, meta, analysis = await _analysis(request)
    if isinstance(analysis, str):
        t = i18n.translator(request.state.lang)
        return c.render(request, "upload.html", 400, venue=venue, upload_id=upload_id, meta=meta, analysis=None,
                        error=t("unreadable", why=analysis[:300]), progress=None)
    return c.render(request, "upload.html", venue=venue, upload_id=upload_id, meta=meta, analysis=analysis,
                    error=None, progress=c.sender.progress(venue, upload_id))


async def upload_send(request: Request) -> Response:
    _upload(request)  # access first, then the form's token
    await _form(request)
    c, venue, upload_id, _, analysis = await _analysis(request)
    if isinstance(analysis, str):
        raise HTTPException(400)
    c.sender.start(venue, upload_id, analysis.table, analysis.profile)
    return RedirectResponse(f"/lieux/{venue}/import/{upload_id}", status_code=303)


async def upload_state(request: Request) -> Response:
    if request.state.user is None:
        return JSONResponse({"error": "login required"}, status_code=401)
    c, venue, upload_id, meta = _upload(request)
    progress = c.sender.progress(venue, upload_id)
    if progress is None:
        return JSONResponse({"state": "done" if meta.get("result") else "idle", "result": meta.get("result")})
    return JSONResponse({"state": progress.state, "done": progress.done, "total": progress.total,
                         "result": progress.result, "error": progress.error})


async def upload_errors(request: Request) -> Response:
    _, _, _, meta, analysis = await _analysis(request)
    if isinstance(analysis, str):
        raise HTTPException(404)
    lang = request.state.lang
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ligne", "colonne", "raison"] if lang == "fr" else ["line", "column", "reason"])
    writer.writerows((e.line, e.column, e.message(lang)) for e in analysis.errors)
    name = urlquote(f"erreurs-{Path(meta['filename']).stem}.csv")
    return Response(("\ufeff" + out.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


# --- errors --------------------------------------------------------------------------------------------------


async def _login_required(request: Request, exc: Exception) -> Response:
    target = urlquote(request.url.path)
    return RedirectResponse(f"/connexion?suite={target}", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not hasattr(request.state, "session"):
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
    t = i18n.translator(request.state.lang)
    key = {403: "csrf" if exc.detail == "csrf" else "forbidden", 404: "not_found"}.get(exc.status_code, "error")
    return _c(request).render(request, "error.html", exc.status_code, message=t(key))


Handler = Callable[[Request], Awaitable[Response]]


def routes() -> list[Route | Mount]:
    v = "/lieux/{venue}"
    u = v + "/import/{upload_id}"
    return [
        Route("/healthz", healthz),
        Route("/connexion", login_form, methods=["GET"]),
        Route("/connexion", login, methods=["POST"]),
        Route("/connexion/lien/{token}", link_login, methods=["GET"]),
        Route("/deconnexion", logout, methods=["POST"]),
        Route("/", home),
        Route("/lieux", venues_page),
        Route(v, venue_home),
        Route(v + "/partage", sharing_page),
        Route(v + "/partage/dpo", dpo_page),
        Route(v + "/sources", sources_page),
        Route(v + "/import", import_page, methods=["GET"]),
        Route(v + "/import", import_upload, methods=["POST"]),
        Route(u, upload_page, methods=["GET"]),
        Route(u + "/envoyer", upload_send, methods=["POST"]),
        Route(u + "/etat", upload_state, methods=["GET"]),
        Route(u + "/erreurs.csv", upload_errors, methods=["GET"]),
        Route(v + "/consentements", consents_page),
        Route(v + "/consentements/liens", preference_links, methods=["POST"]),
        Route(v + "/analyses", insights_page),
        Route(v + "/analyses/rapport", insights_report),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(settings: Settings, console: ConsoleSettings | None = None, users: UserStore | None = None) -> Starlette:
    """The console for ``settings`` (users in ``<data_dir>/console/console.sqlite`` unless given)."""
    console = console or ConsoleSettings.model_validate({})
    users = users or UserStore(settings.data_dir / "console" / "console.sqlite")
    state = Console(settings, console, users)
    app = Starlette(routes=routes(), middleware=[Middleware(SessionMiddleware, console=state)],
                    exception_handlers={LoginRequired: _login_required, HTTPException: _http_error})
    app.state.console = state
    return app
