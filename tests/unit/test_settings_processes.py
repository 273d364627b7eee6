"""Each process validates its own settings at start: a missing secret stops it with one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.errors import ConfigError
from core.settings import GatewaySettings, SinkSettings, WorkerSettings, load_settings
from techne.cli import app

KEY = "0123456789abcdef-key"


@pytest.mark.parametrize(("args", "env", "line"), [
    (["gateway", "--port", "1"], {"TECHNE_SUBJECT_KEY": ""}, "error: TECHNE_SUBJECT_KEY is required"),
    (["worker"], {"TECHNE_PSEUDONYM_KEYS": f'{{"1": "{KEY}"}}', "TECHNE_PSEUDONYM_KEY_VERSION": "2"},
     "error: TECHNE_PSEUDONYM_KEYS has no key version 2"),
    (["sink", "--partner", "p"], {"TECHNE_CLICKHOUSE_URL": "clickhouse:9000"},
     "error: TECHNE_CLICKHOUSE_URL must be an http:// or https:// URL"),
    (["worker"], {"TECHNE_PARTITIONS": "zero", "TECHNE_PSEUDONYM_KEYS": f'{{"1": "{KEY}"}}'},
     "error: TECHNE_PARTITIONS: Input should be a valid integer"),
])
def test_a_process_refuses_to_start_with_one_line(args: list[str], env: dict[str, str], line: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TECHNE_SUBJECT_KEY", "TECHNE_PSEUDONYM_KEYS", "TECHNE_CLICKHOUSE_URL", "TECHNE_CLICKHOUSE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if value:
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(line), result.output  # no traceback, no pydantic dump


def test_each_process_kind_checks_only_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TECHNE_SUBJECT_KEY", "TECHNE_PSEUDONYM_KEYS", "TECHNE_CLICKHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)
    load_settings(SinkSettings)  # a sink needs neither key
    with pytest.raises(ConfigError, match="TECHNE_SUBJECT_KEY"):
        load_settings(GatewaySettings)
    with pytest.raises(ConfigError, match="TECHNE_PSEUDONYM_KEYS"):
        load_settings(WorkerSettings)
    assert load_settings(GatewaySettings, subject_key=KEY).subject_key is not None
