"""An operator's mistakes on the command line end with exit 2 and one line naming the cause,
never with a silent success, a traceback or a store created by a read (real chDB, real CLI)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import REPO_ROOT
from techne.cli import app
from techne.local import free_port

pytestmark = pytest.mark.integration


def run(*args: str) -> tuple[int, str]:
    """The CLI in-process, with a bootstrap where no broker listens (nothing may reach Kafka)."""
    env = {"TECHNE_BOOTSTRAP": f"127.0.0.1:{free_port()}", "TECHNE_VENUES_FILE": str(REPO_ROOT / "deploy/venues.yaml"),
           "TECHNE_AGREEMENTS_DIR": str(REPO_ROOT / "deploy/agreements")}  # some tests run elsewhere
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


def test_query_on_a_missing_data_dir_fails_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, out = run("query", "--data-dir", str(missing), "--partner", "observatoire", "SELECT 1")
    assert code == 2
    assert "does not exist" in one_line_error(out) and "--data-dir" in out
    assert not missing.exists(), "a read must not create the data directory"


def test_query_on_a_data_dir_without_that_store_fails(tmp_path: Path) -> None:
    code, out = run("query", "--data-dir", str(tmp_path), "--partner", "observatoire", "SELECT 1")
    assert code == 2
    assert "no store for 'observatoire'" in one_line_error(out)
    assert not (tmp_path / "partners").exists()


def test_query_for_an_unknown_partner_fails(tmp_path: Path) -> None:
    code, out = run("query", "--data-dir", str(tmp_path), "--partner", "nobody", "SELECT 1")
    assert code == 2 and "nobody" in one_line_error(out)


@pytest.mark.parametrize("command", ["overlap", "loyalty", "views", "publish"])
def test_insights_on_a_missing_store_fail(tmp_path: Path, command: str) -> None:
    code, out = run("insights", command, "--partner", "observatoire", "--data-dir", str(tmp_path / "nope"))
    assert code == 2, out
    assert "does not exist" in one_line_error(out)
    assert "aucune cellule" not in out
    assert not (tmp_path / "nope").exists()


def test_insights_for_an_unknown_partner_or_venue_fail(tmp_path: Path) -> None:
    code, out = run("insights", "overlap", "--partner", "nobody", "--data-dir", str(tmp_path))
    assert code == 2 and "nobody" in one_line_error(out)
    code, out = run("insights", "overlap", "--partner", "observatoire", "--venue", "nowhere",
                    "--data-dir", str(tmp_path))
    assert code == 2 and "lieu inconnu : 'nowhere'" in one_line_error(out)


def test_report_sharing_for_an_unknown_venue_fails_in_french_and_english(tmp_path: Path) -> None:
    code, out = run("report", "sharing", "--venue", "nowhere", "--data-dir", str(tmp_path))
    assert code == 2
    line = one_line_error(out)
    assert "lieu inconnu : 'nowhere'" in line and "unknown venue 'nowhere'" in line and "opera-lyon" in line
    assert not (tmp_path / "audit").exists()


def test_report_sharing_without_an_audit_store_fails(tmp_path: Path) -> None:
    code, out = run("report", "sharing", "--venue", "opera-lyon", "--data-dir", str(tmp_path))
    assert code == 2 and "no store for 'audit'" in one_line_error(out)


@pytest.mark.parametrize("command", ["show", "replay"])
def test_dlq_with_an_unknown_stage_fails_before_connecting(command: str) -> None:
    code, out = run("dlq", command, "--stage", "foo", "--bootstrap", f"127.0.0.1:{free_port()}")
    assert code == 2
    line = one_line_error(out)
    assert "unknown stage 'foo'" in line and "decode, route, sink" in line


def test_dlq_on_an_unreachable_broker_fails_with_one_line() -> None:
    port = free_port()
    code, out = run("dlq", "show", "--stage", "decode", "--bootstrap", f"127.0.0.1:{port}")
    assert code == 1 and f"cannot reach Kafka at 127.0.0.1:{port}" in one_line_error(out)


@pytest.mark.parametrize("args, expected", [
    (["partner", "onboard", "nobody"], "unknown partner 'nobody'"),
    (["partner", "sql", "nobody"], "unknown partner 'nobody'"),
    (["venue", "onboard", "nowhere"], "lieu inconnu : 'nowhere'"),
    (["sibil", "--venue", "nowhere", "--quarter", "2026Q4"], "lieu inconnu : 'nowhere'"),
    (["connector", "poll", "billetweb", "--venue", "nowhere", "--once"], "lieu inconnu : 'nowhere'"),
    (["sink", "--partner", "nobody"], "nobody"),
])
def test_unknown_names_are_refused_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        args: list[str], expected: str) -> None:
    monkeypatch.chdir(tmp_path)  # sibil would write its CSV here
    code, out = run(*args)
    assert code == 2 and expected in one_line_error(out)
    assert list(tmp_path.iterdir()) == []


def test_import_csv_for_an_unknown_venue_fails(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("a;b\n1;2\n", encoding="utf-8")
    code, out = run("import", "csv", str(export), "--venue", "nowhere", "--profile", "billetterie-fr", "--dry-run")
    assert code == 2 and "lieu inconnu : 'nowhere'" in one_line_error(out)


def test_query_on_a_store_held_by_another_process_prints_only_the_clear_message(tmp_path: Path) -> None:
    """stderr at the file-descriptor level: the embedded engine writes its own errors there."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pathlib import Path\n"
         "from sinks.runner import open_store\n"
         "from core.settings import Settings\n"
         "store = open_store(Settings(data_dir=Path(sys.argv[1])), 'observatoire')\n"
         "print('held', flush=True)\n"
         "time.sleep(120)\n", str(tmp_path)],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "techne.cli", "query", "--data-dir", str(tmp_path),
                               "--partner", "observatoire", "SELECT 1"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1  # StoreLocked is transient (retry once the sink stopped)
        assert proc.stdout == ""
        line = one_line_error(proc.stderr)
        assert f"held by another process (PID {holder.pid})" in line
        assert "DB::Exception" not in proc.stderr and "Code: 76" not in proc.stderr
        assert time.monotonic() - started < 120
    finally:
        holder.kill()
        holder.wait()
