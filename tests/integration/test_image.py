"""The production image's contents run every service of docker-compose.yml (no Docker engine).

What ``docker build`` would do, step by step, under a temporary "image root":

1. the build context is assembled exactly as ``.dockerignore`` lets it through
   (:mod:`tests.dockerctx`, moby's pattern semantics);
2. the Dockerfile's build stage runs as written: its ``COPY`` from that context, then its
   ``RUN`` lines (venv from ``requirements.txt`` hash-checked with ``--no-deps``, the project
   wheel with ``--no-build-isolation``, ``pip check``), absolute paths moved under the root;
3. the runtime stage's ``COPY`` from the context (deploy data) and its ``ENV`` (paths moved
   under the root): nothing else of the checkout is visible, the working directory is the
   image's ``WORKDIR``, and the environment is only the image's plus the service's;
4. each service of docker-compose.yml built from the Dockerfile runs its compose ``command``
   with its compose ``environment`` (secrets from the .env `techne deploy init` writes), started in
   ``depends_on`` order, until its compose health check URL answers 200.

The broker is a dedicated local one with SASL/SCRAM and ACLs, like the stack's (so the
services keep compose's SASL settings; their consumer groups do not disturb the session's
bus). Test-only differences, each forced by the machine, not by the image: ports are free
ones instead of the fixed ones (8080, 9100...), ``TECHNE_BOOTSTRAP`` and ``TECHNE_KAFKA_PASSWORD`` point at
that broker, and ``TECHNE_CLICKHOUSE_URL`` is dropped (no ClickHouse server here: the sinks
write their embedded chDB stores in their volume). A module left out of the image, a data file
read from the repository, or a command the compose file names but the CLI lacks fails here.

The venv is built once per test session (pip's cache makes it ~1 minute on a warm machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.venues import load_venues
from techne.deploy_cli import render_env
from techne.local import LocalKafka, free_port
from tests import dockerctx
from tests.support.deploy import parse_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


class FreePorts(dict[int, int]):
    """The compose file's fixed ports (8080, 9100...), each replaced by a free one on first use."""

    def __missing__(self, port: int) -> int:
        self[port] = free_port()
        return self[port]


@dataclass
class Image:
    root: Path
    env: dict[str, str]
    workdir: Path
    context_files: list[str]


def _base_python() -> str:
    """The interpreter standing for the base image's ``python`` (3.11, like python:3.11-slim)."""
    return os.path.realpath(sys.executable)


def build_image(context: Path, root: Path) -> Image:
    """Steps 1-3 of the module doc; returns the runtime stage's environment under ``root``."""
    files = dockerctx.build_context(ROOT, context)
    stages = dockerctx.stages((context / "Dockerfile").read_text(encoding="utf-8")
                              if (context / "Dockerfile").exists() else (ROOT / "Dockerfile").read_text("utf-8"))
    build, runtime = stages[0], stages[-1]
    assert build is not runtime, "the Dockerfile builds in a stage of its own"
    dockerctx.copy_from_context(build, context, root)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root / "root"),
           **dockerctx.image_env(build, root)}
    env.pop("PIP_NO_CACHE_DIR", None)  # the image builds without a cache; here the warm one saves minutes
    for workdir, command in build.runs:
        for argv in dockerctx.run_commands(command, root):
            if argv[0] in {"python", "python3"}:
                argv[0] = _base_python()
            result = subprocess.run(argv, cwd=dockerctx.in_root(root, workdir), env=env, capture_output=True,
                                    text=True, timeout=900, check=False)
            assert result.returncode == 0, f"RUN {' '.join(argv)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for origin, sources, dest in runtime.copies:  # COPY --from=build: the same path under the root
        if origin is not None:
            assert origin == build.name and sources == [dest.rstrip("/")], (origin, sources, dest)
    dockerctx.copy_from_context(runtime, context, root)
    image_env = dockerctx.image_env(runtime, root)
    data_dir = image_env.get("TECHNE_DATA_DIR")
    if data_dir:
        Path(data_dir).mkdir(parents=True, exist_ok=True)  # the runtime stage's `RUN mkdir` (plus chown)
    (root / "root").mkdir(exist_ok=True)
    return Image(root, {"HOME": str(root / "root"), **image_env},
                 dockerctx.in_root(root, runtime.workdir), files)


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    base = tmp_path_factory.mktemp("image")
    built = build_image(base / "context", base / "root")
    built.workdir.mkdir(parents=True, exist_ok=True)
    return built


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(tmp_path_factory.mktemp("image-kafka"), sasl=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def image_services() -> dict[str, dict[str, Any]]:
    """Services of docker-compose.yml built from the repository's Dockerfile, in depends_on order."""
    services = _compose()["services"]
    ours = {name: svc for name, svc in services.items() if "build" in svc}
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        assert name not in path, f"depends_on cycle {path}"
        if name in ordered:
            return
        for dep in services[name].get("depends_on") or {}:
            if dep in ours:
                visit(dep, (*path, name))
        ordered.append(name)

    for name in ours:
        visit(name)
    return {name: ours[name] for name in ordered}


def _health_url(service: dict[str, Any], ports: FreePorts) -> str:
    test = service.get("healthcheck", {}).get("test")
    assert test, "every service of the image has a compose health check"
    text = " ".join(test) if isinstance(test, list) else str(test)
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\" ]*)?", text)
    assert match, f"no http://127.0.0.1:PORT/... in the health check {text!r}"
    return f"http://127.0.0.1:{ports[int(match.group(1))]}{match.group(2) or '/'}"


def _environment(service: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "mapping form of environment"
    out = {}
    for key, value in env.items():
        if value is None:  # passed through only when set on the host: not set here
            continue
        out[key] = dockerctx.interpolate(str(value), values)
    return out


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str


def _start(name: str, service: dict[str, Any], image: Image, broker: LocalKafka,
           secrets: dict[str, str]) -> Running:
    ports = FreePorts()
    env = _environment(service, secrets)
    env["TECHNE_BOOTSTRAP"] = broker.bootstrap
    env.pop("TECHNE_CLICKHOUSE_URL", None)  # no ClickHouse server on this machine: embedded chDB stores
    if "TECHNE_METRICS_PORT" in env:
        env["TECHNE_METRICS_PORT"] = str(ports[int(env["TECHNE_METRICS_PORT"])])
    volume = image.root / "volumes" / name  # one named volume per service in the stack
    volume.mkdir(parents=True, exist_ok=True)
    if "TECHNE_DATA_DIR" in env:
        env["TECHNE_DATA_DIR"] = str(volume)
    argv = [str(a) for a in service["command"]]
    for i, arg in enumerate(argv[:-1]):
        if arg == "--port":
            argv[i + 1] = str(ports[int(argv[i + 1])])
    exe = shutil.which(argv[0], path=image.env["PATH"])
    assert exe and Path(exe).is_relative_to(image.root), f"{argv[0]} is not installed in the image ({exe})"
    log = image.root / "logs" / f"{name}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, *argv[1:]], cwd=image.workdir, env={**image.env, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return Running(name, proc, log, _health_url(service, ports))


def _wait_healthy(running: Running, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = running.proc.poll()
        assert code is None, f"{running.name} exited {code}:\n{running.log.read_text(errors='replace')[-4000:]}"
        try:
            if httpx.get(running.url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, (f"{running.name}: {running.url} not healthy in {timeout:.0f} s:\n"
                                             f"{running.log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.3)


def _stop(running: list[Running]) -> None:
    for r in running:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
    for r in running:
        try:
            r.proc.wait(30)
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait(10)


def test_context_holds_the_packages_and_deploy_data_but_no_secret_or_state(image: Image) -> None:
    files = set(image.context_files)
    tops = {f.split("/", 1)[0] for f in files}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns}
    assert packages <= tops, f"packages left out of the build context: {sorted(packages - tops)}"
    for data in ("deploy/venues.yaml", "deploy/agreements", "deploy/import-profiles", "deploy/consent-sources.yaml",
                 "requirements.txt"):
        assert any(f == data or f.startswith(data + "/") for f in files), f"{data} missing from the build context"
    for f in files:
        assert not f.startswith((".venv/", ".git/", ".techne/", "tests/")), f
        assert not f.endswith(".env") and "__pycache__" not in f, f


def test_installed_package_is_the_wheel_not_the_checkout(image: Image) -> None:
    python = shutil.which("python", path=image.env["PATH"])
    assert python and Path(python).is_relative_to(image.root)
    code = "import techne, insights, schemas, sinks, streams, producers; print(techne.__file__)"
    result = subprocess.run([python, "-c", code], cwd=image.workdir, env=image.env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    location = Path(result.stdout.strip())
    assert "site-packages" in location.parts and location.is_relative_to(image.root), location


def test_every_compose_service_of_the_image_starts(image: Image, sasl_broker: LocalKafka) -> None:
    services = image_services()
    assert {"gateway", "worker", "lag-exporter"} <= set(services), sorted(services)
    assert any(name.startswith("sink-") for name in services)
    venues = sorted(load_venues(ROOT / "deploy" / "venues.yaml"))
    password = sasl_broker.admin_auth.password
    assert password is not None
    # the deploy/.env `techne deploy init` writes, with the test broker's admin password
    secrets = {**parse_env(render_env(venues, "localhost", "registry.localhost", "internal")),
               "TECHNE_KAFKA_PASSWORD": password.get_secret_value()}
    running: list[Running] = []
    try:
        waves: list[list[str]] = []  # services whose image dependencies are healthy start together
        done: set[str] = set()
        pending = list(services)
        while pending:
            wave = [n for n in pending if not (set(services[n].get("depends_on") or {}) & set(pending))]
            waves.append(wave)
            pending = [n for n in pending if n not in wave]
        for wave in waves:
            started = []
            for n in wave:  # each kept as soon as it runs, so a later failure still stops it
                started.append(_start(n, services[n], image, sasl_broker, secrets))
                running.append(started[-1])
            for r in started:
                _wait_healthy(r)
            done.update(wave)
        assert done == set(services)
    finally:
        _stop(running)
