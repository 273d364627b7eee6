"""Matomo HTTP tracking API requests -> canonical web events (pure).

A site's existing Matomo JavaScript tracker can send to the bus by changing its tracker URL
(``/matomo.php``; the site id ``idsite`` is the bus's site key). One tracking request is a set of
query parameters (GET query string, POST form body, or one entry of a bulk
``{"requests": ["?idsite=…&rec=1&…", …]}``). Mapping (Matomo parameter names):

* ``search`` -> ``web.searched`` (``search`` as the query);
* ``e_c`` / ``e_a`` / ``e_n`` with an action the catalogue knows (play, pause, progress, complete,
  download, share) -> ``web.content_interacted`` (content id = ``e_n``, else ``e_c``; ``e_c`` names
  the content type when it is one of the catalogue's, else ``other``);
* ``ping=1`` (heartbeat) and requests without ``rec=1`` -> nothing;
* anything else -> ``web.page_viewed`` (``url``, ``action_name``, ``urlref``, ``_rcn``/``_rck`` as
  campaign, ``lang``).

The visitor is ``_id`` (Matomo's 16-hex visitor id) or ``uid`` (the site's user id, as
customer id). The key of a request (its event id seed) is visitor + page-view id ``pv_id`` +
the request's random ``r`` + the kind, so a re-sent request keeps its event id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

CONTENT_ACTIONS = {"play", "pause", "progress", "complete", "download", "share"}
CONTENT_TYPES = {"video", "audio", "podcast", "document", "image", "article"}


def parse_request(query: str) -> dict[str, str]:
    """One tracking request's parameters from a query string (leading ``?`` allowed)."""
    return dict(parse_qsl(query.lstrip("?"), keep_blank_values=True))


def to_event(params: Mapping[str, str], *, user_agent: str | None = None) -> tuple[dict[str, Any], str] | None:
    """``(payload, key)`` of one tracking request, or None when it records nothing."""
    if params.get("rec") != "1" or params.get("ping") == "1":
        return None
    customer = {k: v for k, v in {"visitor_id": params.get("_id") or params.get("cid"),
                                  "customer_id": params.get("uid"),
                                  "user_agent": (params.get("ua") or user_agent or "")[:1024]}.items() if v}
    base: dict[str, Any] = {"occurred_at": datetime.now(UTC).isoformat(), "source_system": "matomo",
                            "customer": customer}
    session = params.get("pv_id")
    if session:
        base["session_id"] = session
    seed = ":".join((customer.get("visitor_id", customer.get("customer_id", "")), params.get("pv_id", ""),
                     params.get("r", "")))
    action = params.get("e_a", "").lower()
    if params.get("search") is not None and params.get("search") != "":
        return {**base, "type": "web.searched", "query": params["search"][:512]}, seed + ":search"
    if action in CONTENT_ACTIONS:
        kind = params.get("e_c", "").lower()
        payload = {**base, "type": "web.content_interacted", "action": action,
                   "content_type": kind if kind in CONTENT_TYPES else "other",
                   "content_id": params.get("e_n") or params.get("e_c") or "unknown", "page_url": params.get("url")}
        if params.get("e_v", "").isdigit():
            payload["position_s"] = int(params["e_v"])
        return {k: v for k, v in payload.items() if v is not None}, seed + f":content:{action}"
    payload = {**base, "type": "web.page_viewed", "page_url": params.get("url"),
               "page_title": params.get("action_name") or None, "referrer_url": params.get("urlref") or None,
               "utm_campaign": params.get("_rcn") or None, "utm_source": params.get("_rck") or None,
               "language": (params.get("lang") or "")[:16] or None}
    return {k: v for k, v in payload.items() if v is not None}, seed + ":pageview"
