"""`techne schemas …`, `techne bench codec` through the real CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from techne.cli import app

runner = CliRunner()


def test_schemas_check_and_generated_files_are_clean() -> None:
    for args in (["schemas", "check"], ["schemas", "docs", "--check"], ["schemas", "models", "--check"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output


def test_bench_codec_prints_a_table_then_json() -> None:
    result = runner.invoke(app, ["bench", "codec", "--events", "300", "--rounds", "1", "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "techne codec" in lines[1]
    figures = json.loads(lines[-1])
    assert figures["ratio_vs_fastavro_encode"] > 0 and figures["ratio_vs_fastavro_decode"] > 0
    assert figures["encode_events_per_s"] > 0 and figures["events"] == 300
