"""The insights dashboard: generated, checked in, reading the published release only."""

from __future__ import annotations

import re

from insights import grafana


def test_checked_in_json_is_the_generator_output() -> None:
    assert grafana.OUT.read_text(encoding="utf-8") == grafana.render(), "run `python -m insights.grafana`"


def test_panels_read_the_published_release_only() -> None:
    model = grafana.dashboard()
    queries = [t["rawSql"] for p in model["panels"] for t in p["targets"]]
    queries += [v["query"] for v in model["templating"]["list"] if v["type"] == "query"]
    for sql in queries:
        assert re.findall(r"FROM\s+(\S+)", sql) == ["${partner}.insights_release"], sql
    for panel in model["panels"]:
        assert panel["datasource"]["uid"] == grafana.DATASOURCE_UID


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in grafana.dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, panel["title"]
        cells |= mine
