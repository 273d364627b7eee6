"""``techne insights`` as a user runs it (real processes, a real chDB store), and the HTML report
opened in headless Chromium (Debian's ``chromium``, installed by deploy/local/prereqs.sh)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def techne(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "techne.cli", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("insights-cli")
    done = techne("insights", "sample", "--partner", "observatoire", "--data-dir", str(directory), "--persons", "800")
    assert done.returncode == 0, done.stderr
    return directory


def test_cli_json_and_text(data_dir: Path) -> None:
    done = techne("insights", "overlap", "--partner", "observatoire", "--data-dir", str(data_dir), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["k"] == 10 and out["cells"] and all(c["persons"] >= 10 for c in out["cells"])
    assert set(out["protection"]) >= {"cells", "published", "suppressed", "threshold", "differencing"}
    text = techne("insights", "loyalty", "--partner", "observatoire", "--data-dir", str(data_dir), "--season",
                  "2025-26", "--venue", "mixt")
    assert text.returncode == 0 and "Fidélité" in text.stdout and "2025-26" in text.stdout
    assert "2024-25" not in text.stdout and "cellule(s) masquée(s)" in text.stdout
    again = techne("insights", "sample", "--partner", "observatoire", "--data-dir",
                   str(data_dir))
    assert again.returncode == 2 and "already holds" in again.stderr


def test_a_partner_without_an_analytics_agreement_is_refused(data_dir: Path) -> None:
    done = techne("insights", "geography", "--partner", "reseau-danse", "--data-dir", str(data_dir))
    assert done.returncode == 2 and "cross_venue_analytics" in done.stderr


@pytest.fixture(scope="module")
def reports(data_dir: Path) -> dict[str, Path]:
    out = {}
    for lang in ("fr", "en"):
        path = data_dir / f"report-{lang}.html"
        done = techne("insights", "report", "--partner", "observatoire", "--data-dir", str(data_dir), "--html",
                      str(path), "--lang", lang)
        assert done.returncode == 0, done.stderr
        out[lang] = path
    return out


def test_report_is_self_contained(reports: dict[str, Path]) -> None:
    fr, en = (reports[lang].read_text(encoding="utf-8") for lang in ("fr", "en"))
    for page in (fr, en):
        assert not re.search(r"\b(src|href)\s*=", page) and "http" not in page and "@import" not in page
        assert page.count("<svg data-chart=") == 4
    assert '<html lang="fr">' in fr and "Publics partagés entre lieux" in fr
    assert '<html lang="en">' in en and "Audience overlap between venues" in en


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (deploy/local/prereqs.sh installs it as root)")
def test_report_renders_in_headless_chromium(reports: dict[str, Path], tmp_path: Path) -> None:
    for path in reports.values():
        dom = chromium(tmp_path, "--dump-dom", path.as_uri())
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert re.search(r'<body[^>]*data-rendered="ok"', dom.stdout), dom.stdout[:500]
    shot = tmp_path / "report.png"
    done = chromium(tmp_path, "--window-size=1280,1800", f"--screenshot={shot}", reports["fr"].as_uri())
    assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (deploy/local/prereqs.sh installs it as root)")
def test_the_marker_reports_a_broken_page(reports: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    page = reports["fr"].read_text(encoding="utf-8")
    broken.write_text(re.sub(r'<svg data-chart="funnel".*?</svg>', "", page, flags=re.S), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", broken.as_uri())
    assert re.search(r'<body[^>]*data-rendered="error: expected 4 charts', dom.stdout)
