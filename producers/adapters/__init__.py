"""Vendor adapters: the registry of push sources, and the poll connectors.

``PUSH`` maps a source name (the ``{source}`` of ``POST /v1/venues/{venue_id}/sources/{source}``)
to its :class:`~producers.adapters.base.Adapter`; ``POLL`` maps a source name to its poll
connector class (``techne connector poll``). Credentials of each venue's sources come from
``TECHNE_SOURCE_SECRETS`` (venue -> source -> secrets), IP allow-lists from
``TECHNE_SOURCE_ALLOWED_IPS``.
"""

from __future__ import annotations

from producers.adapters.base import Adapter, AuthRejected, OptIn, PayloadRejected, SourceEvent
from producers.adapters.billetweb import Billetweb
from producers.adapters.canonical import Canonical
from producers.adapters.helloasso import HelloAsso
from producers.adapters.secutix import SecuTix
from producers.adapters.weezevent import Weezevent

PUSH: dict[str, Adapter] = {a.name: a for a in (Canonical(), HelloAsso(), SecuTix())}
POLL: dict[str, type[Billetweb] | type[Weezevent]] = {"billetweb": Billetweb, "weezevent": Weezevent}

__all__ = ["POLL", "PUSH", "Adapter", "AuthRejected", "OptIn", "PayloadRejected", "SourceEvent"]
