"""``techne demo`` with each pilot venue through its own source (HelloAsso, SecuTix, Billetweb poll
against the simulator, CSV imports, canonical webhook, Matomo hits): every event accounted for,
and the per-source table shows what each source brought, what was shared and what was dropped
for lack of consent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def test_demo_accounts_for_every_source(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "demo", "--events", "300", "--json", "--data-dir",
                           str(tmp_path)], cwd=REPO_ROOT, env={**os.environ}, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["all_accounted"] is True
    table = summary["per_source"]
    assert set(table) == {"helloasso", "secutix", "billetweb", "csv", "canonical", "matomo"}
    for source, row in table.items():
        assert row["received"] >= row["accepted"] > 0, source
        assert row["accepted"] >= row["shared"] + row["dropped_consent"], source
    for source in ("helloasso", "secutix", "billetweb", "csv", "canonical"):  # every ticketing source shares
        assert table[source]["shared"] > 0 and table[source]["dropped_consent"] > 0, source
    assert table["matomo"]["shared"] == 0  # web audience measurement is never shared
    assert sum(row["accepted"] for row in table.values()) == summary["totals"]["accepted"]
