"""Grafana dashboards of the bus, as code: ``python -m techne.dashboards`` writes deploy/grafana/dashboards/.

Two dashboards, provisioned by the compose stack (deploy/grafana/provisioning/dashboards/):

- ``techne-overview``: throughput per venue and per partner, consent drops, dead letters,
  consumer lag, end-to-end latency p50/p99, gateway and sink latencies, silent venues, spool;
- ``techne-partner``: one partner (template variable ``partner``): what is shared with it, by
  purpose, what is dropped, its sink (rows, duplicates, batches, insert latency and errors), its
  consumer lag and its erasure commands.

Only metrics declared in core/metrics.py and sinks/metrics.py are used (plus any listed in
:data:`PENDING_METRICS`, for a panel added before its metric; none today).
:func:`expressions` lists every PromQL expression, which tests evaluate on a real Prometheus.
``tests/unit/test_dashboards.py`` checks that the checked-in JSON equals :func:`render` output.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import REPO_ROOT

OUT_DIR = REPO_ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "techne-prometheus"}  # provisioning/datasources/prometheus.yml
RATE = "$__rate_interval"
E2E = "techne_sink_e2e_latency_seconds"
PENDING_METRICS: frozenset[str] = frozenset()
"""Metrics the dashboards use that no process declares yet (none: the end-to-end latency
histogram ``techne_sink_e2e_latency_seconds{partner}`` is declared in sinks/metrics.py)."""


@dataclass(frozen=True)
class Panel:
    title: str
    targets: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    description: str = ""
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


def _q(quantile: float, metric: str, by: str = "le", selector: str = "") -> str:
    return f"histogram_quantile({quantile}, sum by ({by}) (rate({metric}_bucket{selector}[{RATE}])))"


def overview_panels() -> list[Panel]:
    return [
        Panel("Events accepted per venue", [(f"sum by (venue) (rate(techne_gateway_events_total[{RATE}]))",
                                             "{{venue}}")], "ops", "Signed webhooks acknowledged by Kafka (202)."),
        Panel("Gateway answers by status", [(f"sum by (status) (rate(techne_gateway_requests_total[{RATE}]))",
                                             "{{status}}")], "reqps", "4xx: refused input; 503: Kafka unavailable."),
        Panel("Events shared per partner", [(f"sum by (partner) (rate(techne_routed_total[{RATE}]))", "{{partner}}")],
              "ops", "Consented, pseudonymized events routed to partner topics."),
        Panel("Rows stored per partner", [(f"sum by (partner) (rate(techne_sink_rows_inserted_total[{RATE}]))",
                                           "{{partner}}")], "ops", "Rows inserted into partner ClickHouse tables."),
        Panel("Consent drops (on purpose)", [(f"sum by (partner, purpose) (rate(techne_consent_dropped_total[{RATE}]))",
                                              "{{partner}} / {{purpose}}")], "ops",
              "Events not shared because the person did not consent: dropped on purpose, not failures."),
        Panel("Dead letters", [(f"sum by (stage, reason) (rate(techne_dlq_total[{RATE}]))", "{{stage}}: {{reason}}")],
              "ops", "Messages sent to dlq.<stage>: inspect with `techne dlq show`."),
        Panel("Consumer lag per group", [("sum by (group) (techne_consumer_lag)", "{{group}}")], "short",
              "Records not yet consumed (end offset - committed), from `techne lag --serve`."),
        Panel("End-to-end latency (received -> partner insert)",
              [(_q(0.5, E2E), "p50"), (_q(0.99, E2E), "p99")], "s",
              f"{E2E}: from received_at at the gateway to the insert in the partner store."),
        Panel("Gateway Kafka acknowledgement", [(_q(0.5, "techne_gateway_produce_seconds"), "p50"),
                                                (_q(0.99, "techne_gateway_produce_seconds"), "p99")], "s"),
        Panel("Sink insert latency p99", [(_q(0.99, "techne_sink_insert_seconds", "le, partner"), "{{partner}}")],
              "s", "One idempotent batch write (existing-id check + insert)."),
        Panel("Events processed by the worker", [(f"sum by (event_type) (rate(techne_stream_events_total[{RATE}]))",
                                                  "{{event_type}}")], "ops"),
        Panel("Time since last event per venue",
              [("time() - max by (venue) (techne_gateway_last_event_timestamp_seconds)", "{{venue}}")], "s",
              "TechneVenueSilent fires above techne_venue_silence_threshold_seconds.", kind="bargauge"),
        Panel("Erasure commands sent", [(f"sum by (partner, reason) (rate(techne_erasures_issued_total[{RATE}]))",
                                         "{{partner}}: {{reason}}")], "ops",
              "Consent withdrawals and erasure requests propagated to partner stores."),
        Panel("Gateway spool (Kafka unavailable)", [("max(techne_spool_depth)", "events waiting"),
                                                     ("max(techne_spool_oldest_age_seconds)", "oldest age (s)")],
              "short", "Accepted events fsynced by the gateway while Kafka does not acknowledge them."),
        Panel("Targets up", [('up{job=~"techne-.*"}', "{{service}}")], "short", kind="stat",
              extra={"options": {"colorMode": "background", "graphMode": "none"}}),
    ]


def partner_panels() -> list[Panel]:
    p = 'partner="$partner"'
    group = 'group="techne-sink.$partner"'
    return [
        Panel("Shared, by purpose", [(f"sum by (purpose) (rate(techne_routed_total{{{p}}}[{RATE}]))", "{{purpose}}")],
              "ops"),
        Panel("Dropped for lack of consent, by purpose",
              [(f"sum by (purpose) (rate(techne_consent_dropped_total{{{p}}}[{RATE}]))", "{{purpose}}")], "ops"),
        Panel("Rows stored and duplicates skipped",
              [(f"sum(rate(techne_sink_rows_inserted_total{{{p}}}[{RATE}]))", "inserted"),
               (f"sum(rate(techne_sink_duplicates_skipped_total{{{p}}}[{RATE}]))", "duplicates skipped")], "ops"),
        Panel("Average batch size",
              [(f"sum(rate(techne_sink_rows_inserted_total{{{p}}}[{RATE}])) / "
                f"sum(rate(techne_sink_batches_total{{{p}}}[{RATE}]))", "rows per batch")], "short"),
        Panel("Insert latency", [(_q(0.5, "techne_sink_insert_seconds", "le", f"{{{p}}}"), "p50"),
                                 (_q(0.99, "techne_sink_insert_seconds", "le", f"{{{p}}}"), "p99")], "s"),
        Panel("Insert errors and undecodable messages",
              [(f"sum(rate(techne_sink_insert_errors_total{{{p}}}[{RATE}]))", "insert errors (retried)"),
               (f"sum(rate(techne_sink_undecodable_total{{{p}}}[{RATE}]))", "undecodable")], "ops"),
        Panel("Sink consumer lag", [(f"sum by (topic, partition) (techne_consumer_lag{{{group}}})",
                                     "{{topic}}[{{partition}}]")], "short"),
        Panel("End-to-end latency (received -> insert)",
              [(_q(0.5, E2E, "le", f"{{{p}}}"), "p50"), (_q(0.99, E2E, "le", f"{{{p}}}"), "p99")], "s",
              f"{E2E}: from received_at at the gateway to the insert in the partner store."),
        Panel("Erasure commands", [(f"sum by (reason) (rate(techne_erasures_issued_total{{{p}}}[{RATE}]))",
                                    "{{reason}}")], "ops"),
    ]


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": panel.extra.get("options", {"legend": {"displayMode": "list", "placement": "bottom"}}),
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(panel.targets)],
    }


def _dashboard(uid: str, title: str, panels: list[Panel], templating: list[dict[str, Any]]) -> dict[str, Any]:
    laid_out, x, y = [], 0, 0
    for i, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + panel.height
        laid_out.append(_panel(panel, i, x, y))
        x += panel.width
    return {
        "uid": uid,
        "title": title,
        "tags": ["techne"],
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": templating},
        "annotations": {"list": []},
        "links": [{"title": "Techné dashboards", "type": "dashboards", "tags": ["techne"], "asDropdown": True}],
        "panels": laid_out,
    }


PARTNER_VARIABLE = {
    "name": "partner",
    "label": "Partner",
    "type": "query",
    "datasource": DATASOURCE,
    "query": {"query": "label_values(techne_routed_total, partner)", "refId": "partner"},
    "definition": "label_values(techne_routed_total, partner)",
    "refresh": 2,
    "sort": 1,
    "multi": False,
    "includeAll": False,
}


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model."""
    return {
        "techne-overview.json": _dashboard("techne-overview", "Techné bus — overview", overview_panels(), []),
        "techne-partner.json": _dashboard("techne-partner", "Techné bus — partner", partner_panels(),
                                          [PARTNER_VARIABLE]),
    }


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def expressions(partner: str, rate: str = "1m") -> list[str]:
    """Every PromQL expression of the dashboards, Grafana's variables substituted (``$partner`` by ``partner``).

    The last one is the PromQL equivalent of the ``partner`` variable's ``label_values`` query.
    """
    out = [target["expr"].replace(RATE, rate).replace("$partner", partner)
           for model in dashboards().values() for panel in model["panels"] for target in panel["targets"]]
    return [*out, "group by (partner) (techne_routed_total)"]


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in dashboards().items():
        path = out_dir / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR):
        print(written)
