"""What every console route shares: the :class:`Console` state, the session middleware and the
access checks.

Access, for every route under ``/lieux/{venue}/`` (:func:`venue_access`): no valid session ->
:class:`LoginRequired` (a redirect to ``/connexion``); a venue that does not exist -> 404; a venue
the user may not see -> 403 (a venue's user sees only its own venue; an operator sees them all).
Every ``POST`` (login included) reads its form through :func:`checked_form`, which refuses it
(403) without the session's CSRF token in the field ``csrf``. Responses are ``Cache-Control:
no-store`` and carry a strict Content-Security-Policy (no inline script; scripts and styles from
``/static`` only, except the self-contained insights report, framed from the same origin only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from core.errors import StoreMissing, TechneError
from core.settings import Settings
from core.venues import load_venues
from techne.console import i18n, uploads
from techne.console.security import COOKIE, ConsoleSettings, LoginLimiter, Session, Sessions, console_secret, csrf_ok
from techne.console.users import User, UserStore

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'self'"
PERIOD_DAYS = 30
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2299, 12, 30)
"""A period is kept within these days (the engine's DateTime64 range, its end day included):
``?jusqu=9999-12-31`` reads everything instead of overflowing the page."""
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
        self.insights_cache: dict[str, tuple[float, Any]] = {}
        """partner -> (when, protected release): the insights are computed at most once a minute."""

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = request.state.lang
        t = i18n.translator(lang)

        def who(stores: Any) -> str:
            """Partner ids as shown (a venue's own store, ``venue:<id>``, as "your own store")."""
            names = stores if isinstance(stores, list | tuple) else [stores]
            return ", ".join(t("own_store") if str(p).startswith("venue:") else str(p) for p in names)

        def lang_url(code: str) -> str:
            """This page in language ``code``, its other parameters (the period) kept."""
            return f"{request.url.path}?{urlencode({**request.query_params, 'lang': code})}"

        context.update(t=t, lang=lang, pick=lambda table, key: i18n.pick(table, key, lang), i18n=i18n, who=who,
                       lang_url=lang_url,
                       csrf=request.state.session.csrf, user=request.state.user, path=request.url.path,
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


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def signed_in_user(request: Request) -> User:
    user: User | None = request.state.user
    if user is None:
        raise LoginRequired
    return user


def venue_access(request: Request) -> tuple[Console, User, str]:
    """The venue of the path, if this session's user may see it (see module doc)."""
    c, user = console_of(request), signed_in_user(request)
    venue = str(request.path_params["venue"])
    if venue not in c.venues:
        raise HTTPException(404)
    if not user.may_see(venue):
        raise HTTPException(403)
    return c, user, venue


FORM_OVERHEAD = 64 * 1024
"""Bytes a form may hold beyond its file (``max_upload_bytes``): fields and multipart framing."""


class _BodyTooLarge(Exception):
    pass


async def checked_form(request: Request) -> Any:
    """The POSTed form, after the CSRF check. Its body is read up to ``max_upload_bytes`` +
    :data:`FORM_OVERHEAD` (413 beyond, announced or not: Starlette spools a file part to disk
    without a bound, and this runs before any sign-in, for the login form too)."""
    c = console_of(request)
    limit = c.console.max_upload_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413)
    seen = 0

    async def bounded() -> Any:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise _BodyTooLarge
        return message

    try:
        form = await Request(request.scope, bounded).form(max_files=1, max_fields=20,
                                                          max_part_size=c.console.max_upload_bytes)
    except _BodyTooLarge:
        raise HTTPException(413) from None
    except Exception:  # a malformed or oversized multipart body
        raise HTTPException(400) from None
    if not csrf_ok(request.state.session, form.get("csrf")):
        raise HTTPException(403, "csrf")
    return form


def period(request: Request) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    try:
        until = date.fromisoformat(request.query_params.get("jusqu", "")) if request.query_params.get("jusqu") \
            else today
        since = date.fromisoformat(request.query_params.get("depuis", "")) if request.query_params.get("depuis") \
            else until - timedelta(days=PERIOD_DAYS)
    except ValueError:
        raise HTTPException(400) from None
    since, until = (min(max(d, FIRST_DAY), LAST_DAY) for d in (since, until))
    return (since, until) if since <= until else (until, since)


async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Blocking reads off the event loop; a store problem becomes a message on the page."""
    try:
        return await asyncio.to_thread(fn, *args), None
    except StoreMissing:  # nothing stored yet: the page shows "nothing in this period"
        return None, None
    except TechneError as exc:
        return None, str(exc)[:300]


