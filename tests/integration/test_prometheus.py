"""A real Prometheus (Debian's package) scrapes a running bus; every dashboard and alert expression works.

The session's bus (gateway) plus a worker, one sink per partner and the lag exporter run as the
real child processes (techne.stack.Stack); ``/usr/bin/prometheus`` is started on a free port with
a generated config that scrapes them every second and loads deploy/prometheus/alerts.yml. After
some signed traffic, each PromQL expression of the dashboards and of the alert rules is evaluated
through the HTTP API: none may fail, and the key ones must return data. Bounded: about 30 s.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from core.topics import raw_topic
from schemas import CATALOGUE
from schemas.models import SHARED_TICKET_ORDER
from techne import dashboards
from techne.local import free_port
from techne.stack import Stack
from techne.traffic import generate, send_all
from tests.conftest import Bus

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# expressions that must return data once traffic went through (the others may be empty: no DLQ
# record, no insert error, no silent venue, the pending end-to-end histogram...)
KEY = [
    "sum by (venue) (rate(techne_gateway_events_total[1m]))",
    "sum by (partner) (rate(techne_routed_total[1m]))",
    "sum by (partner) (rate(techne_sink_rows_inserted_total[1m]))",
    "sum by (partner, purpose) (rate(techne_consent_dropped_total[1m]))",
    "sum by (group) (techne_consumer_lag)",
    "time() - max by (venue) (techne_gateway_last_event_timestamp_seconds)",
    'up{job=~"techne-.*"}',
]


def _alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def scraped(bus: Bus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Prometheus scraping gateway, worker, sinks and lag exporter of the running bus."""
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus missing: deploy/local/prereqs.sh installs Debian's package (as root)")
    stack = bus.stack
    if "worker" not in stack.services:  # shared with the other tests, like the `worker` fixture
        stack.start_worker()
    started = [f"sink-{p}" for p in bus.partners if f"sink-{p}" not in stack.services]
    for name in started:
        stack.start_sink(name.removeprefix("sink-"))
    stack.start_lag_exporter(interval=1.0)
    started.append("lag-exporter")
    for name in started:  # every /metrics answers (and its port is taken) before Prometheus starts
        _wait_metrics(stack, name)
    gateway = bus.gateway_url.removeprefix("http://")

    def job(name: str, services: list[str], path: str = "/metrics") -> dict[str, Any]:
        targets = [f"127.0.0.1:{stack.services[s].metrics_port}" for s in services]
        return {"job_name": name, "metrics_path": path,
                "static_configs": [{"targets": targets, "labels": {"service": name}}]}

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "techne-gateway", "metrics_path": "/metrics/",
             "static_configs": [{"targets": [gateway], "labels": {"service": "gateway"}}]},
            job("techne-worker", ["worker"]),
            job("techne-sink", [s for s in stack.services if s.startswith("sink-")]),
            job("techne-lag", ["lag-exporter"]),
        ],
    }
    workdir = tmp_path_factory.mktemp("prometheus")
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
                             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (workdir / "prometheus.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready in 20 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for name in started:
            stack.stop(name)


def _wait_metrics(stack: Stack, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stack.check()  # raises with the log tail if the process died
        try:
            if httpx.get(f"http://127.0.0.1:{stack.services[name].metrics_port}/metrics", timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{name} serves no /metrics after {timeout:.0f} s"
        time.sleep(0.2)


def query(url: str, expr: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return list(body["data"]["result"])


def test_every_dashboard_and_alert_expression_evaluates(scraped: str, bus: Bus) -> None:
    url = scraped
    secrets = {v: bus.venue_secret(v) for v in json.loads(bus.env["TECHNE_VENUE_SECRETS"])}
    results = asyncio.run(send_all(bus.gateway_url, generate(300, seed=11), secrets))
    assert sum(r.status == 202 for r in results) > 200

    deadline = time.monotonic() + 40
    missing = list(KEY)
    while missing and time.monotonic() < deadline:
        missing = [expr for expr in missing if not query(url, expr)]
        time.sleep(1)
    if missing:
        targets = httpx.get(f"{url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = [(t["labels"]["job"], t["health"], t["lastError"]) for t in targets]
        raise AssertionError(f"no data for {missing}; targets: {health}")

    partner = bus.partners[0]
    for expr in dashboards.expressions(partner) + _alert_expressions():
        query(url, expr)  # raises with Prometheus' error message on a bad expression

    rules = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = [rule for group in rules for rule in group["rules"]]
    assert len(loaded) == len(_alert_expressions())
    assert all(rule["health"] != "err" for rule in loaded), [r for r in loaded if r["health"] == "err"]
    targets = httpx.get(f"{url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in targets if t["health"] == "up"} == {
        "techne-gateway", "techne-worker", "techne-sink", "techne-lag"}


def test_no_label_value_looks_personal(scraped: str) -> None:
    """What really reached Prometheus: no e-mail, UUID, pseudonym-like hex or long free text in any label."""
    resp = httpx.get(f"{scraped}/api/v1/series", params={"match[]": '{__name__=~"techne_.+"}'}, timeout=10)
    series = resp.json()["data"]
    assert len(series) > 50
    suspicious = re.compile(r"@|[0-9a-f]{8}-[0-9a-f]{4}-|[0-9a-f]{32,}|\s")
    values: dict[str, set[str]] = {}
    for labels in series:
        for name, value in labels.items():
            if name not in {"__name__", "instance", "job", "service", "le", "quantile"}:
                assert not suspicious.search(value) and len(value) <= 64, f"{labels['__name__']}: {name}={value!r}"
                values.setdefault(name, set()).add(value)
    assert all(len(v) <= 100 for v in values.values()), {k: len(v) for k, v in values.items()}


def test_each_process_exports_only_its_own_series(scraped: str) -> None:
    """The worker, sinks and lag exporter used to export the gateway's series as zeros."""
    own = {"techne_gateway_.+|techne_spool_.+|techne_venue_.+": {"techne-gateway"},
           "techne_stream_.+|techne_routed_total|techne_consent_.+|techne_erasures_issued_total": {"techne-worker"},
           "techne_sink_.+": {"techne-sink"}, "techne_consumer_lag|techne_lag_.+": {"techne-lag"},
           "techne_dlq_total": {"techne-worker", "techne-sink"}}
    for names, jobs in own.items():
        found = {r["metric"]["job"] for r in query(scraped, f'count by (job) ({{__name__=~"{names}"}})')}
        assert found == jobs, (names, found)


def _alerts(url: str, name: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name]


def test_a_single_dead_letter_makes_the_alert_fire(scraped: str, bus: Bus) -> None:
    """The worker creates its dead-letter series at 0 at start, so ONE poison message is an
    increase: TechneDeadLettersGrowing becomes pending (it fires 5 minutes later: `for: 5m`,
    checked by promtool in deploy/prometheus/tests/first_event_test.yml). Before, the series
    was born at 1 with the letter and the alert never saw it."""
    series = 'techne_dlq_total{job="techne-worker", stage="decode", reason="trailing_bytes"}'
    deadline = time.monotonic() + 30
    while not query(scraped, series):  # Prometheus has scraped the series at its start value
        assert time.monotonic() < deadline, f"{series}: not exported by the worker"
        time.sleep(0.5)
    assert not [a for a in _alerts(scraped, "TechneDeadLettersGrowing") if a["labels"]["reason"] == "trailing_bytes"]
    record = CATALOGUE.encode(SHARED_TICKET_ORDER, {
        "event_id": "00000000-0000-4000-8000-000000000017", "event_type": "ticket.order_placed", "occurred_at": 0,
        "received_at": 0, "venue_id": "opera-lyon", "agreement_id": "x", "purpose": "research",
        "subject_pseudonym": "p" * 64, "pseudonym_key_version": 1})

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bus.bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(raw_topic("opera-lyon"), value=record + b"\x00", key=b"one-poison")
        finally:
            await producer.stop()

    asyncio.run(produce())
    deadline = time.monotonic() + 40
    while True:
        mine = [a for a in _alerts(scraped, "TechneDeadLettersGrowing") if a["labels"]["reason"] == "trailing_bytes"]
        if mine:
            break
        assert time.monotonic() < deadline, f"no alert after one dead letter; {series} = {query(scraped, series)}"
        time.sleep(1)
    assert mine[0]["state"] in ("pending", "firing") and mine[0]["labels"]["stage"] == "decode"
    assert float(mine[0]["value"]) > 0
