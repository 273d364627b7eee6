"""A local simulator of the Billetweb and Weezevent APIs, for the poll connectors' tests and the demo.

It serves the documented shapes the connectors read (producers/adapters/billetweb.py and
weezevent.py): Billetweb ``GET /billetweb/api/events`` and ``/billetweb/api/event/{id}/attendees
?last_update=<unix>`` with ``user`` + ``key``; Weezevent ``GET /weezevent/events`` and
``/weezevent/participant/list?id_event[]=…&last_update=<YYYY-MM-DD HH:MM:SS, Paris>`` with
``api_key`` + ``access_token``. Wrong credentials: Billetweb 403, Weezevent 401. Objects are
held in memory; :meth:`VendorSimulator.billetweb_attendee` / :meth:`weezevent_participant` add or
change one, stamping its ``last_update`` with the simulator's time, so a changed object is
returned by the next poll and an unchanged one is not.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PARIS = ZoneInfo("Europe/Paris")
FORMAT = "%Y-%m-%d %H:%M:%S"


class VendorSimulator:
    """One simulator process-wide; ``start()`` serves it on 127.0.0.1 in a thread."""

    def __init__(self, billetweb: tuple[str, str] = ("bw-user", "bw-key"),
                 weezevent: tuple[str, str] = ("wz-api-key", "wz-token")) -> None:
        self.billetweb_auth, self.weezevent_auth = billetweb, weezevent
        self.billetweb_events: dict[str, dict[str, Any]] = {}
        self.attendees: dict[str, dict[str, dict[str, Any]]] = {}
        self.weezevent_events: dict[str, dict[str, Any]] = {}
        self.participants: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- data -------------------------------------------------------------------------------
    def billetweb_event(self, event_id: str, name: str, start: str) -> None:
        with self._lock:
            self.billetweb_events[event_id] = {"id": event_id, "name": name, "start": start}
            self.attendees.setdefault(event_id, {})

    def billetweb_attendee(self, event_id: str, attendee: dict[str, Any], at: float | None = None) -> None:
        """Add or replace an attendee (``id`` required); its ``last_update`` becomes ``at`` (default now)."""
        with self._lock:
            self.attendees[event_id][str(attendee["id"])] = {**attendee, "last_update": int(at or time.time())}

    def weezevent_event(self, event_id: int, name: str, start: str) -> None:
        with self._lock:
            self.weezevent_events[str(event_id)] = {"id": event_id, "name": name, "date": {"start": start}}
            self.participants.setdefault(str(event_id), {})

    def weezevent_participant(self, event_id: int, participant: dict[str, Any], at: float | None = None) -> None:
        """Add or replace a participant (``id_participant`` required); its ``last_update`` becomes
        ``at`` (Unix time, default now)."""
        stamp = datetime.fromtimestamp(at or time.time(), PARIS).strftime(FORMAT)
        with self._lock:
            self.participants[str(event_id)][str(participant["id_participant"])] = {
                "create_date": stamp, **participant, "id_event": event_id, "last_update": stamp}

    # --- API --------------------------------------------------------------------------------
    def app(self) -> Starlette:
        def creds(request: Request, names: tuple[str, str], expected: tuple[str, str]) -> bool:
            self.calls.append((request.url.path, dict(request.query_params)))
            return tuple(request.query_params.get(n) for n in names) == expected

        async def bw_events(request: Request) -> JSONResponse:
            if not creds(request, ("user", "key"), self.billetweb_auth):
                return JSONResponse({"error": "authentication failed"}, status_code=403)
            with self._lock:
                return JSONResponse(list(self.billetweb_events.values()))

        async def bw_attendees(request: Request) -> JSONResponse:
            if not creds(request, ("user", "key"), self.billetweb_auth):
                return JSONResponse({"error": "authentication failed"}, status_code=403)
            since = int(request.query_params.get("last_update", "0") or 0)
            with self._lock:
                found = [a for a in self.attendees.get(request.path_params["eid"], {}).values()
                         if a["last_update"] >= since]
            return JSONResponse(found)

        async def wz_events(request: Request) -> JSONResponse:
            if not creds(request, ("api_key", "access_token"), self.weezevent_auth):
                return JSONResponse({"error": {"code": 401, "message": "invalid credentials"}}, status_code=401)
            with self._lock:
                return JSONResponse({"events": list(self.weezevent_events.values())})

        async def wz_participants(request: Request) -> JSONResponse:
            if not creds(request, ("api_key", "access_token"), self.weezevent_auth):
                return JSONResponse({"error": {"code": 401, "message": "invalid credentials"}}, status_code=401)
            since = request.query_params.get("last_update", "")
            events = request.query_params.getlist("id_event[]")
            with self._lock:
                found = [p for e in events for p in self.participants.get(e, {}).values()
                         if not since or p["last_update"] >= since]  # same format: text order is time order
            return JSONResponse({"participants": found})

        return Starlette(routes=[Route("/billetweb/api/events", bw_events),
                                 Route("/billetweb/api/event/{eid}/attendees", bw_attendees),
                                 Route("/weezevent/events", wz_events),
                                 Route("/weezevent/participant/list", wz_participants)])

    @property
    def billetweb_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/billetweb/api"

    @property
    def weezevent_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/weezevent"

    def start(self, port: int = 0) -> VendorSimulator:
        from techne.local import free_port

        self.port = port or free_port()
        self._server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port,
                                                     log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="vendor-sim")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
