"""Run the bus's processes (gateway, worker, sinks) as child processes.

Used by ``techne demo`` and by the end-to-end tests, so both exercise the real processes.
Each child gets its configuration through ``TECHNE_*`` environment variables (secrets
included: they never appear on a command line or in a log) and writes its output to
``<log_dir>/<name>.log``. :meth:`Stack.stop` sends SIGTERM (a sink then flushes and commits)
and SIGKILLs after a grace period; :meth:`Stack.kill` is the fault-injection SIGKILL.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.errors import ServiceFailed as ServiceFailed  # defined with the whole tree
from techne.local import free_port


def generate_secrets(venue_ids: list[str]) -> dict[str, str]:
    """Fresh random secrets as ``TECHNE_*`` environment entries (for demos and tests)."""
    venue_secrets = {v: ["whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()] for v in venue_ids}
    return {
        "TECHNE_VENUE_SECRETS": json.dumps(venue_secrets),
        "TECHNE_SUBJECT_KEY": secrets.token_urlsafe(32),
        "TECHNE_PSEUDONYM_KEYS": json.dumps({"1": secrets.token_urlsafe(32)}),
        "TECHNE_PSEUDONYM_KEY_VERSION": "1",
        "TECHNE_DATAKEY_MASTER_KEYS": json.dumps({"1": secrets.token_urlsafe(32)}),
    }


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int | None = None
    url: str | None = None
    args: list[str] = field(default_factory=list)
    restarts: int = 0


@dataclass
class Stack:
    """Child processes sharing one environment (``env`` overlays ``os.environ``)."""

    env: dict[str, str]
    log_dir: Path
    services: dict[str, Service] = field(default_factory=dict)
    module: str = "techne.cli"
    """What ``python -m`` runs for each child (tests run their fault-injecting entry point instead)."""

    def _spawn(self, name: str, args: list[str], metrics_port: int | None = None) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        if metrics_port is not None:
            env["TECHNE_METRICS_PORT"] = str(metrics_port)
        with log_path.open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", self.module, *args], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        service = Service(name, proc, log_path, metrics_port, args=args)
        self.services[name] = service
        return service

    def revive(self) -> list[str]:
        """Restart the children that exited, like a process supervisor (compose's
        ``restart: unless-stopped``) would; returns their names. Restarts are counted."""
        revived = []
        for name, service in list(self.services.items()):
            if service.proc.poll() is not None:
                restarts = service.restarts + 1
                fresh = self._spawn(name, service.args, service.metrics_port)
                fresh.url, fresh.restarts = service.url, restarts
                revived.append(name)
        return revived

    def wait_group_stable(self, group: str, bootstrap: str, timeout: float = 60.0) -> None:
        """Wait until consumer group ``group`` has members and a stable assignment."""
        import asyncio

        from aiokafka.admin import AIOKafkaAdminClient

        from core.kafka_auth import env_kwargs

        async def state() -> str:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **env_kwargs())
            await admin.start()
            try:
                described = await admin.describe_consumer_groups([group])
                if not described or not described[0].groups:
                    return ""
                entry = described[0].groups[0]  # (error_code, group, state, ...)
                return str(getattr(entry, "state", None) or entry[2])
            finally:
                await admin.close()

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self.check()
            try:
                if asyncio.run(state()) == "Stable":
                    return
            except Exception as exc:  # broker not answering yet: keep waiting until the deadline
                last_error = exc
            time.sleep(0.5)
        raise ServiceFailed(f"group {group} not stable within {timeout:.0f}s (last error: {last_error!r})")

    def start_gateway(self, port: int | None = None, timeout: float = 30.0) -> str:
        return self._start_http("gateway", ["gateway"], port, timeout)

    def start_console(self, port: int | None = None, timeout: float = 30.0) -> str:
        """``techne console`` (the venues' web console); returns its URL once it answers."""
        return self._start_http("console", ["console"], port, timeout)

    def _start_http(self, name: str, args: list[str], port: int | None, timeout: float) -> str:
        port = port or free_port()
        service = self._spawn(name, [*args, "--port", str(port)])
        service.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(service)
            try:
                if httpx.get(service.url + "/healthz", timeout=1.0).status_code == 200:
                    return service.url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServiceFailed(f"{name} not ready in {timeout:.0f}s:\n{self.log_tail(name)}")

    def start_worker(self, name: str = "worker") -> Service:
        return self._spawn(name, ["worker"], metrics_port=free_port())

    def start_audit_sink(self) -> Service:
        return self._sink("sink-audit", ["sink", "--audit"])

    def _sink(self, name: str, args: list[str]) -> Service:
        """A store has one writer: a sink already running under ``name`` is returned, never doubled
        (a second process would stop at once on the store's lock)."""
        running = self.services.get(name)
        if running is not None and running.proc.poll() is None:
            return running
        return self._spawn(name, args, metrics_port=free_port())

    def start_sink(self, partner: str) -> Service:
        return self._sink(f"sink-{partner}", ["sink", "--partner", partner])

    def start_venue_sink(self, venue: str) -> Service:
        """The sink of a venue's own store (service ``sink-venue-<venue>``)."""
        return self._sink(f"sink-venue-{venue}", ["sink", "--venue", venue])

    def start_lag_exporter(self, interval: float = 2.0) -> Service:
        """``techne lag --serve``: consumer lag of the bus's groups on a /metrics port."""
        return self._spawn("lag-exporter", ["lag", "--serve", "--interval", str(interval)], metrics_port=free_port())

    def _check_alive(self, service: Service) -> None:
        if service.proc.poll() is not None:
            raise ServiceFailed(f"{service.name} exited with {service.proc.returncode}:\n{self.log_tail(service.name)}")

    def check(self) -> None:
        """Raise :class:`ServiceFailed` if any child has died."""
        for service in self.services.values():
            self._check_alive(service)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, name: str, grace: float = 30.0) -> int | None:
        """SIGTERM one child and wait; SIGKILL after ``grace``. Returns its exit code."""
        service = self.services.pop(name, None)
        if service is None:
            return None
        if service.proc.poll() is None:
            service.proc.send_signal(signal.SIGTERM)
            try:
                service.proc.wait(grace)
            except subprocess.TimeoutExpired:
                service.proc.kill()
                service.proc.wait()
        return service.proc.returncode

    def kill(self, name: str) -> None:
        service = self.services.pop(name, None)
        if service is not None and service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()

    def stop_all(self) -> None:
        for name in list(self.services):
            self.stop(name)
