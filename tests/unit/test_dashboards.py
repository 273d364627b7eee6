"""Grafana dashboards: generated as code, checked in as JSON, using declared metrics only."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from techne import dashboards
from tests.support.metrics import PROMETHEUS_BUILTIN_METRICS, _declared_metrics, metric_names

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_json_is_the_generator_output() -> None:
    for name, model in dashboards.dashboards().items():
        path = dashboards.OUT_DIR / name
        assert path.exists(), f"run `python -m techne.dashboards` to create {path}"
        assert path.read_text(encoding="utf-8") == dashboards.render(model), (
            f"{path} is stale: run `python -m techne.dashboards`")


def test_dashboards_use_the_provisioned_datasource() -> None:
    provisioning = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
                                  .read_text(encoding="utf-8"))
    (source,) = provisioning["datasources"]
    for model in dashboards.dashboards().values():
        assert model["uid"] and model["title"]
        for panel in model["panels"]:
            assert panel["datasource"]["uid"] == source["uid"]
            assert panel["targets"], panel["title"]


def test_panels_do_not_overlap() -> None:
    for model in dashboards.dashboards().values():
        cells: set[tuple[int, int]] = set()
        for panel in model["panels"]:
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, panel["title"]
            cells |= mine
        assert len({p["id"] for p in model["panels"]}) == len(model["panels"])


def test_only_declared_metrics_are_queried() -> None:
    declared = _declared_metrics() | PROMETHEUS_BUILTIN_METRICS | dashboards.PENDING_METRICS
    for expr in dashboards.expressions("observatoire"):
        unknown = metric_names(expr) - declared
        assert not unknown, f"{expr} uses undeclared metrics {sorted(unknown)}"


def test_overview_covers_the_issue() -> None:
    exprs = " ".join(t["expr"] for p in dashboards.dashboards()["techne-overview.json"]["panels"] for t in p["targets"])
    for metric in ("techne_gateway_events_total", "techne_routed_total", "techne_consent_dropped_total",
                   "techne_dlq_total", "techne_consumer_lag", "techne_sink_e2e_latency_seconds_bucket",
                   "techne_sink_rows_inserted_total"):
        assert metric in exprs, metric
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


def test_partner_view_is_templated_on_partner() -> None:
    model = json.loads(dashboards.render(dashboards.dashboards()["techne-partner.json"]))
    (variable,) = model["templating"]["list"]
    assert variable["name"] == "partner"
    for panel in model["panels"]:
        for target in panel["targets"]:
            assert "$partner" in target["expr"], f"{panel['title']} is not filtered on the partner"
