"""The preference centre: a small French page per venue where a person grants or withdraws each
purpose of sharing, reached through a signed link (for example in a newsletter footer).

Routes (served by the gateway):

* ``GET /v1/preferences/{token}`` — the page: the venue, each purpose its agreements share for,
  the partners named for it (from the agreements covering the venue, names from
  ``deploy/consent-sources.yaml``), and two buttons of the same size per purpose, « J'accepte »
  and « Je refuse » (withdrawing is as easy as granting, GDPR art. 7(3));
* ``POST /v1/preferences/{token}`` — one choice (``purpose``, ``choice`` = ``grant`` | ``withdraw``,
  ``csrf``): a ``consent.granted`` / ``consent.withdrawn`` event like any other source's
  (collection method ``preference_center``, recipients = the partners shown, the configured
  recipient list version), durably accepted before the answer (303 back to the page, which then
  confirms). Its ``auth`` header: ``preference-centre:signed-link``.

The link (:func:`preference_link`): ``/v1/preferences/<token>``, the token a Fernet token
(authenticated encryption, with its issue time) of ``{venue, email}`` under a key derived from
``TECHNE_SUBJECT_KEY``: the address is not readable from the link, a changed byte is refused,
and a link older than ``link_ttl_days`` (30 by default) is refused as expired. Refusals are a
French page (with an English line), status 403 (forged, expired, wrong venue) or 400 (bad form),
and record nothing. CSRF: each page carries a token (itsdangerous, bound to the link, one hour),
checked on POST together with the ``Origin`` header when the browser sends a real one (a
privacy setting may send ``null``); a cross-site POST without the page's token is refused.
Nothing on these routes logs the link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.door import Refused, parse_params
from producers.gateway.events import deliver
from producers.gateway.http import BodyTimeout, BodyTooLarge, media_type, read_capped
from producers.ingest import EventRejected, derived_event_id, prepare
from schemas.agreements import Agreement

if TYPE_CHECKING:
    from producers.gateway.app import Gateway

log = logging.getLogger("techne.gateway")
AUTH = "preference-centre:signed-link"
CSRF_MAX_AGE_S = 3600
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}  # the link never leaves the site
PURPOSES_FR = {
    "cross_venue_analytics": ("Statistiques partagées entre lieux",
                              "Vos réservations, sous pseudonyme, servent à des statistiques communes aux lieux "
                              "du réseau (fréquentation, territoires, fidélité). Jamais votre nom ni votre adresse."),
    "marketing": ("Programmation et offres des partenaires",
                  "Vos réservations, sous pseudonyme, aident les partenaires nommés à vous proposer leur "
                  "programmation."),
    "research": ("Recherche sur les publics",
                 "Vos réservations, sous pseudonyme, servent à des études sur les publics de la culture."),
}


def _fernet(subject_key: bytes) -> Fernet:
    derived = hmac.new(subject_key, b"techne-preference-link-v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def preference_link(subject_key: bytes, venue_id: str, email: str, base_url: str,
                    issued_at: datetime | None = None) -> str:
    """The person's signed link to ``venue_id``'s preference centre (the console shows it, a
    consent receipt links it). ``issued_at`` defaults to now; links expire ``link_ttl_days`` later."""
    body = json.dumps({"v": venue_id, "e": email.strip().lower()}, separators=(",", ":")).encode()
    at = int((issued_at or datetime.now(UTC)).timestamp())
    token = _fernet(subject_key).encrypt_at_time(body, at).decode()
    return f"{base_url.rstrip('/')}/v1/preferences/{token}"


@dataclass(frozen=True)
class Holder:
    venue_id: str
    email: str


class LinkRefused(Exception):
    """The link is forged, damaged or expired; ``reason`` is safe to show."""

    def __init__(self, reason: str, fr: str) -> None:
        super().__init__(reason)
        self.reason, self.fr = reason, fr


def read_link(subject_key: bytes, token: str, ttl_days: int, now: datetime | None = None) -> Holder:
    """Who the link is for, or :class:`LinkRefused`."""
    fernet = _fernet(subject_key)
    try:
        body = fernet.decrypt_at_time(token.encode(), ttl_days * 86_400, int((now or datetime.now(UTC)).timestamp()))
    except InvalidToken:
        try:  # authentic but too old?
            fernet.decrypt_at_time(token.encode(), 10**10, int((now or datetime.now(UTC)).timestamp()))
        except InvalidToken:
            raise LinkRefused("forged_link", "Ce lien n'est pas valide (il a peut-être été modifié).") from None
        raise LinkRefused("expired_link", "Ce lien a expiré. Utilisez le lien du dernier message reçu du lieu, "
                                          "ou demandez-en un nouveau.") from None
    data = json.loads(body)
    return Holder(str(data["v"]), str(data["e"]))


def _csrf(subject_key: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(hmac.new(subject_key, b"techne-preference-csrf-v1", hashlib.sha256).hexdigest(),
                                  salt="preference-form")


def _link_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
PAGE = _ENV.from_string("""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.5rem} .purpose{border:1px solid #ccc;border-radius:8px;padding:1rem;margin:1rem 0}
.purpose h2{font-size:1.1rem;margin:0 0 .4rem} .actions{display:flex;gap:1rem;margin-top:.8rem}
.actions button{flex:1;font-size:1rem;padding:.7rem;border-radius:6px;border:2px solid #333;background:#fff}
.done{background:#e8f5e9;border:1px solid #2e7d32;padding:.8rem;border-radius:6px}
.refused{background:#fdecea;border:1px solid #b71c1c;padding:.8rem;border-radius:6px}
small{color:#555}
</style></head><body>
{% if refused %}
<h1>Centre de préférences</h1>
<p class="refused" role="alert" id="refused">{{ refused }}</p>
<p><small lang="en">{{ refused_en }}</small></p>
<p>Aucun choix n'a été enregistré.</p>
{% else %}
<h1>Vos choix de partage — {{ venue_name }}</h1>
<p>Vous recevez cette page parce que {{ venue_name }} vous a envoyé ce lien personnel. Pour chaque usage,
vous pouvez accepter ou refuser le partage de vos réservations avec les partenaires nommés.
Vous pouvez changer d'avis à tout moment, aussi simplement.</p>
{% if done %}<p class="done" role="status" id="done">{{ done }}</p>{% endif %}
{% for p in purposes %}
<section class="purpose" id="purpose-{{ p.id }}">
<h2>{{ p.title }}</h2>
<p>{{ p.text }}</p>
<p>Partenaires destinataires : <strong>{{ p.partners|join(", ") }}</strong>.</p>
<form method="post" action="">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="purpose" value="{{ p.id }}">
<div class="actions">
<button type="submit" name="choice" value="grant">J'accepte</button>
<button type="submit" name="choice" value="withdraw">Je refuse</button>
</div></form>
</section>
{% endfor %}
<p><small>Liste des destinataires : version {{ version }}. Sans choix de votre part, rien n'est partagé.</small></p>
{% endif %}
</body></html>""")


def _purposes(gw: Gateway, venue_id: str) -> list[dict[str, Any]]:
    agreements: list[Agreement] = gw.agreements
    by_purpose: dict[str, set[str]] = {}
    for a in agreements:
        if venue_id in a.provider_venues:
            for p in a.purposes:
                if p.value in PURPOSES_FR:
                    by_purpose.setdefault(p.value, set()).add(a.partner)
    return [{"id": p, "title": PURPOSES_FR[p][0], "text": PURPOSES_FR[p][1], "recipients": sorted(partners),
             "partners": [gw.consent.partners.get(x, x) for x in sorted(partners)]}
            for p, partners in sorted(by_purpose.items())]


def _refusal(status: int, refused: LinkRefused) -> HTMLResponse:
    english = {"forged_link": "This link is not valid (it may have been altered). Nothing was recorded.",
               "expired_link": "This link has expired. Nothing was recorded.",
               "bad_form": "This form is not valid or too old; reload the page. Nothing was recorded."}
    html = PAGE.render(title="Lien refusé", refused=refused.fr, refused_en=english.get(refused.reason, ""))
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def _holder(gw: Gateway, token: str) -> Holder:
    holder = read_link(gw.subject_key, token, gw.consent.preference_centre.link_ttl_days)
    if holder.venue_id not in gw.venues:
        raise LinkRefused("forged_link", "Ce lien n'est pas valide.")
    return holder


async def page(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = request.path_params["token"]
    try:
        holder = _holder(gw, token)
    except LinkRefused as exc:
        return _refusal(403, exc)
    done = {"grant": "C'est noté : vous acceptez ce partage.",
            "withdraw": "C'est noté : vous refusez ce partage. Ce qui a déjà été partagé sera effacé chez les "
                        "partenaires."}.get(request.query_params.get("done", ""))
    html = PAGE.render(title="Vos choix de partage", venue_name=gw.venues[holder.venue_id].name,
                       purposes=_purposes(gw, holder.venue_id), csrf=_csrf(gw.subject_key).dumps(_link_digest(token)),
                       done=done, version=gw.consent.preference_centre.recipient_list_version)
    return HTMLResponse(html, headers={**NO_STORE, "X-Frame-Options": "DENY", "Content-Security-Policy":
                                       "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"})


async def choose(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = request.path_params["token"]
    try:
        holder = _holder(gw, token)
    except LinkRefused as exc:
        return _refusal(403, exc)
    bad_form = LinkRefused("bad_form", "Ce formulaire n'est pas valide ou trop ancien : rechargez la page.")
    origin = request.headers.get("origin")
    if origin not in (None, "null") and urlparse(origin).netloc != request.headers.get("host", ""):
        return _refusal(403, bad_form)
    # the form through the parsing door (not Starlette's parser: no size bound of our own there)
    if media_type(request) != "application/x-www-form-urlencoded":
        return _refusal(415, bad_form)
    try:
        body = await read_capped(request, gw.settings.max_body_bytes)
        form = parse_params(body.decode("utf-8", errors="replace"), gw.limits)
    except BodyTooLarge:
        return _refusal(413, bad_form)
    except BodyTimeout:
        return _refusal(408, bad_form)
    except Refused as exc:
        return _refusal(exc.status, bad_form)
    try:
        if _csrf(gw.subject_key).loads(str(form.get("csrf", "")), max_age=CSRF_MAX_AGE_S) != _link_digest(token):
            return _refusal(403, bad_form)
    except BadSignature:
        return _refusal(403, bad_form)
    purposes = {p["id"]: p for p in _purposes(gw, holder.venue_id)}
    purpose, choice = str(form.get("purpose", "")), str(form.get("choice", ""))
    if purpose not in purposes or choice not in ("grant", "withdraw"):
        return _refusal(400, bad_form)
    now = datetime.now(UTC)
    centre = gw.consent.preference_centre
    payload = {"type": "consent.granted" if choice == "grant" else "consent.withdrawn", "occurred_at": now.isoformat(),
               "source_system": "preference-centre", "customer": {"email": holder.email}, "purpose": purpose,
               "recipients": purposes[purpose]["recipients"], "recipient_list_version": centre.recipient_list_version,
               "collection_point": "preference-centre", "collection_method": "preference_center",
               "proof_ref": f"preference-centre:{_link_digest(token)[:16]}:{now.isoformat()}"}
    if centre.wording_version:
        payload["wording_version"] = centre.wording_version
    event_id = derived_event_id(holder.venue_id, "preferences", _link_digest(token), purpose, choice, now.isoformat())
    try:
        record = prepare(payload, venue_id=holder.venue_id, subject_key=gw.subject_key, auth=AUTH,
                         fallback_id=uuid.UUID(str(event_id)))
    except EventRejected:
        return _refusal(400, bad_form)
    refused = await deliver(gw, [record], holder.venue_id)
    if refused is not None:
        return refused
    return RedirectResponse(f"{request.url.path}?done={choice}#purpose-{purpose}", status_code=303, headers=NO_STORE)


def routes() -> list[BaseRoute]:
    return [Route("/v1/preferences/{token}", page, methods=["GET"]),
            Route("/v1/preferences/{token}", choose, methods=["POST"])]
