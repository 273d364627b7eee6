"""The first dead letter (undecodable message, insert error, erasure, 5xx) of a process alerts.

``deploy/prometheus/tests/first_event_test.yml`` runs the real alert rules under ``promtool test
rules`` on series as the processes now export them (created at 0 at start, then 1): the
dead-letter and undecodable alerts fire, and the increases show; its "never initialized" twins
(a series born at 1, as before) show none. The metric side (every known label set created at
start, each process its own registry) is tested in test_metrics.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULE_TEST = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "tests" / "first_event_test.yml"


def test_a_first_isolated_event_alerts_once_its_series_starts_at_zero() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: deploy/local/prereqs.sh installs Debian's prometheus package (as root)")
    cases = yaml.safe_load(RULE_TEST.read_text(encoding="utf-8"))["tests"]
    fired = {check["alertname"] for case in cases for check in case.get("alert_rule_test", [])
             if check.get("exp_alerts")}
    assert fired == {"TechneDeadLettersGrowing", "TechneSinkUndecodableMessages"}
    result = subprocess.run([promtool, "test", "rules", str(RULE_TEST)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
