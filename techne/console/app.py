"""The console's Starlette application: sign-in, the route table, error pages, :func:`create_app`.

Pages live in :mod:`techne.console.pages` and :mod:`techne.console.imports`; the shared state,
session middleware and access checks in :mod:`techne.console.web`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import quote as urlquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.settings import Settings
from producers.ingest import configure
from techne.console import i18n, uploads
from techne.console.imports import import_page, import_upload, upload_errors, upload_page, upload_send, upload_state
from techne.console.pages import (
    consents_page,
    dpo_page,
    insights_page,
    insights_report,
    preference_links,
    sharing_page,
    sources_page,
)
from techne.console.security import ConsoleSettings, Session
from techne.console.users import User, UserStore
from techne.console.web import (
    HERE,
    Console,
    LoginRequired,
    SessionMiddleware,
    checked_form,
    console_of,
    signed_in_user,
    venue_access,
)

log = logging.getLogger(__name__)

# --- login ---------------------------------------------------------------------------------------------------


NEXT_RE = re.compile(r"^/lieux/([a-z0-9-]+)(/[a-z0-9/_-]*)?$")


def _next(requested: object, user: User) -> str:
    """Where to go after signing in: the page asked for if it is one of the user's venue pages."""
    match = NEXT_RE.match(str(requested or ""))
    if match and user.may_see(match.group(1)):
        return str(requested)
    return "/lieux" if user.is_operator else f"/lieux/{user.venue}/partage"


async def login_form(request: Request) -> Response:
    return console_of(request).render(request, "login.html", error=None, suite=request.query_params.get("suite", ""))


async def login(request: Request) -> Response:
    c = console_of(request)
    form = await checked_form(request)
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
    c = console_of(request)
    user = await asyncio.to_thread(c.users.redeem_link, str(request.path_params["token"]))
    if user is None:
        t = i18n.translator(request.state.lang)
        return c.render(request, "login.html", 401, error=t("bad_link"), suite="")
    return _signed_in(request, user)


async def logout(request: Request) -> Response:
    await checked_form(request)
    request.state.session = Session.fresh()
    request.state.new_session = True
    return RedirectResponse("/connexion", status_code=303)


async def home(request: Request) -> Response:
    user = signed_in_user(request)
    return RedirectResponse("/lieux" if user.is_operator else f"/lieux/{user.venue}/partage", status_code=303)


async def venues_page(request: Request) -> Response:
    c, user = console_of(request), signed_in_user(request)
    if not user.is_operator:
        return RedirectResponse(f"/lieux/{user.venue}/partage", status_code=303)
    return c.render(request, "venues.html")


async def venue_home(request: Request) -> Response:
    _, _, venue = venue_access(request)
    return RedirectResponse(f"/lieux/{venue}/partage", status_code=303)


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
    message = t("too_big", mb=console_of(request).console.max_upload_bytes // 1_048_576) \
        if exc.status_code == 413 else t(key)
    return console_of(request).render(request, "error.html", exc.status_code, message=message)


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


def _purging(settings: Settings) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """While the console runs: uploaded files older than a day deleted at start and every
    :data:`~techne.console.uploads.PURGE_EVERY_S`, every venue's (they hold personal data)."""

    async def purge_forever() -> None:
        while True:
            await asyncio.sleep(uploads.PURGE_EVERY_S)
            try:
                await asyncio.to_thread(uploads.purge_all, settings)
            except OSError as exc:  # a disk problem must not stop the loop
                log.warning("console: purging old uploads failed: %s", exc)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(uploads.purge_all, settings)
        task = asyncio.create_task(purge_forever())
        try:
            yield
        finally:
            task.cancel()

    return lifespan


def create_app(settings: Settings, console: ConsoleSettings | None = None, users: UserStore | None = None) -> Starlette:
    """The console for ``settings`` (users in ``<data_dir>/console/console.sqlite`` unless given)."""
    console = console or ConsoleSettings.model_validate({})
    if settings.datakey_master_keys:  # imports seal identifiers like every producer (else refused when sent)
        configure(settings)
    users = users or UserStore(settings.data_dir / "console" / "console.sqlite")
    home = settings.data_dir / "console"  # hashes, signing key, uploaded files: the owner's only
    home.mkdir(parents=True, exist_ok=True)
    try:
        home.chmod(0o700)
    except PermissionError:  # not ours (a mount): say so, the console still works
        log.warning("console: cannot restrict %s to its owner (mode 0700)", home)
    state = Console(settings, console, users)
    app = Starlette(routes=routes(), middleware=[Middleware(SessionMiddleware, console=state)],
                    exception_handlers={LoginRequired: _login_required, HTTPException: _http_error},
                    lifespan=_purging(settings))
    app.state.console = state
    return app
