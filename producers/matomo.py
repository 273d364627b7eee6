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
customer id). Event time: ``cdt`` when the tracker sends it (Unix seconds or ``YYYY-MM-DD
HH:MM:SS`` UTC, what server-side trackers send for queued hits), else the time of receipt; a
``cdt`` in the future (beyond 10 minutes of clock skew) is replaced by the time of receipt.

Event ids (:func:`hit_key`): a re-sent hit must keep its id, two distinct hits must not share
one, and the trackers do not all help. The JavaScript tracker sends a random ``r``, a page-view
id ``pv_id`` and the visitor's local time ``h``/``m``/``s``; the PHP tracker ``r`` and often
``cdt``; the Node tracker none of them (only what the site passes). So the key is a digest of
the hit's *whole* parameter set (sorted; ``token_auth`` left out): whatever a tracker sends
that tells two hits apart — ``r``, ``pv_id``, ``cdt``, ``h``/``m``/``s``, ``_idts``, ``idgoal``,
``e_v``, the URL — is in it, and a retry (same request, byte for byte) gives the same key. The
collector adds the *delivery identity* the parameters cannot carry: the occurrence number of
an identical request within one bulk body (two identical entries of a bulk are two hits; the
same bulk re-sent yields the same numbers). Limit: two single requests with identical
parameters (no ``r``, no time, same URL and visitor) are indistinguishable from a retry and
count once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

CONTENT_ACTIONS = {"play", "pause", "progress", "complete", "download", "share"}
CONTENT_TYPES = {"video", "audio", "podcast", "document", "image", "article"}
NOT_IN_ID = frozenset({"token_auth"})


def parse_request(query: str) -> dict[str, str]:
    """One tracking request's parameters from a query string (leading ``?`` allowed)."""
    return dict(parse_qsl(query.lstrip("?"), keep_blank_values=True))


def hit_key(params: Mapping[str, str]) -> str:
    """Digest of one hit's whole parameter set (order-independent; ``token_auth`` left out)."""
    digest = hashlib.sha256()
    for name, value in sorted((k, v) for k, v in params.items() if k not in NOT_IN_ID):
        digest.update(f"{len(name)}:{name}={len(value)}:{value};".encode())
    return digest.hexdigest()[:32]


FUTURE_SKEW = timedelta(minutes=10)
"""How far ahead of the receipt a ``cdt`` may be (clock skew); later ones are not believed."""


def event_time(params: Mapping[str, str], now: datetime | None = None) -> str:
    """``cdt`` as ISO 8601 UTC when the tracker sent a readable one, else the time of receipt
    ``now``. A ``cdt`` more than :data:`FUTURE_SKEW` after ``now`` is not believed either: the
    tracking door is public (a site key is no secret), and a hit dated years ahead would outlive
    the venue store's 25-month limit on measurement, which counts from the event time."""
    now = now or datetime.now(UTC)
    cdt = params.get("cdt", "").strip()
    try:
        if re.fullmatch(r"[0-9]{1,12}", cdt):
            when = datetime.fromtimestamp(int(cdt), UTC)
        elif cdt:
            when = datetime.strptime(cdt, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        else:
            return now.isoformat()
    except (ValueError, OverflowError, OSError):
        return now.isoformat()
    return (when if when <= now + FUTURE_SKEW else now).isoformat()


def to_event(params: Mapping[str, str], *, user_agent: str | None = None) -> tuple[dict[str, Any], str] | None:
    """``(payload, key)`` of one tracking request, or None when it records nothing."""
    if params.get("rec") != "1" or params.get("ping") == "1":
        return None
    customer = {k: v for k, v in {"visitor_id": params.get("_id") or params.get("cid"),
                                  "customer_id": params.get("uid"),
                                  "user_agent": (params.get("ua") or user_agent or "")[:1024]}.items() if v}
    base: dict[str, Any] = {"occurred_at": event_time(params), "source_system": "matomo",
                            "customer": customer}
    session = params.get("pv_id")
    if session:
        base["session_id"] = session
    seed = hit_key(params)
    action = params.get("e_a", "").lower()
    if params.get("search") is not None and params.get("search") != "":
        return {**base, "type": "web.searched", "query": params["search"][:512]}, seed + ":search"
    if action in CONTENT_ACTIONS:
        kind = params.get("e_c", "").lower()
        payload = {**base, "type": "web.content_interacted", "action": action,
                   "content_type": kind if kind in CONTENT_TYPES else "other",
                   "content_id": params.get("e_n") or params.get("e_c") or "unknown", "page_url": params.get("url")}
        if re.fullmatch(r"[0-9]{1,9}", params.get("e_v", "")):  # ASCII digits, bounded ("²".isdigit() holds)
            payload["position_s"] = int(params["e_v"])
        return {k: v for k, v in payload.items() if v is not None}, seed + f":content:{action}"
    payload = {**base, "type": "web.page_viewed", "page_url": params.get("url"),
               "page_title": params.get("action_name") or None, "referrer_url": params.get("urlref") or None,
               "utm_campaign": params.get("_rcn") or None, "utm_source": params.get("_rck") or None,
               "language": (params.get("lang") or "")[:16] or None}
    return {k: v for k, v in payload.items() if v is not None}, seed + ":pageview"


def to_events(requests: Sequence[Mapping[str, str]], *,
              user_agent: str | None = None) -> list[tuple[int, dict[str, Any], str]]:
    """``(index, payload, key)`` of each recording request of one delivery (a query, a form body
    or a bulk), in order; the n-th repeat of an identical request gets ``#n`` on its key."""
    seen: dict[str, int] = {}
    out = []
    for index, params in enumerate(requests):
        mapped = to_event(params, user_agent=user_agent)
        if mapped is None:
            continue
        occurrence = seen.get(mapped[1], 0)
        seen[mapped[1]] = occurrence + 1
        out.append((index, mapped[0], mapped[1] if occurrence == 0 else f"{mapped[1]}#{occurrence}"))
    return out
