"""A malformed setting stops every command with one line naming the variable, never its value: a
pydantic traceback quotes the input, and the input may be a secret (pseudonym keys, console key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from techne.cli import app

SECRET = "do-not-print-this-secret-value"
COMMANDS = [
    ["backup", "create", "{tmp}/backup"],
    ["backup", "restore", "{tmp}/backup"],
    ["backup", "ledger", "{tmp}/ledger.jsonl.gz"],
    ["console", "user", "list", "--data-dir", "{tmp}"],
    ["console", "user", "link", "someone", "--data-dir", "{tmp}"],
    ["agreements", "export", "--format", "odrl"],
    ["consent", "receipt", "--venue", "gemeaux", "--email", "a@example.org"],
    ["insights", "publish", "--partner", "observatoire", "--data-dir", "{tmp}"],
    ["query", "--partner", "observatoire", "SELECT 1", "--data-dir", "{tmp}"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_malformed_secret_setting_is_one_line_without_its_value(command: list[str], tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = CliRunner().invoke(app, args, env={"TECHNE_PSEUDONYM_KEYS": f'{{"1": ["{SECRET}"]}}'})
    output = result.output
    assert result.exit_code in (1, 2), output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught error
    assert SECRET not in output and "Traceback" not in output, output
    assert "TECHNE_PSEUDONYM_KEYS" in output, output


def test_a_bad_console_setting_names_its_console_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["console", "--data-dir", str(tmp_path), "--port", "1"],
                                env={"TECHNE_CONSOLE_SECRET": "short", "TECHNE_CONSOLE_SESSION_HOURS": "x"})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "TECHNE_CONSOLE_SECRET: at least 32" in result.output
    assert "TECHNE_CONSOLE_SESSION_HOURS" in result.output and "short" not in result.output


@pytest.mark.parametrize("command", [["agreements", "check"], ["query", "--partner", "observatoire", "SELECT 1"],
                                     ["agreements", "export", "--format", "odrl"]], ids=" ".join)
def test_a_missing_agreements_directory_is_named_not_read_as_no_agreement(command: list[str], tmp_path: Path) -> None:
    """An operator started from another directory (or with a typo in TECHNE_AGREEMENTS_DIR) is told
    the directory is missing; read as empty, the worker would route nothing and the partner look unknown."""
    missing = tmp_path / "agreemnts"
    result = CliRunner().invoke(app, [*command, "--data-dir", str(tmp_path)] if command[0] == "query" else command,
                                env={"TECHNE_AGREEMENTS_DIR": str(missing)})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert str(missing) in result.output and "TECHNE_AGREEMENTS_DIR" in result.output, result.output
    assert "no data-sharing agreement names" not in result.output
    assert not missing.exists()


def test_load_agreements_refuses_a_missing_directory(tmp_path: Path) -> None:
    from core.errors import ConfigError
    from schemas.agreements import load_agreements

    with pytest.raises(ConfigError, match="does not exist"):
        load_agreements(tmp_path / "nowhere")
    assert load_agreements(tmp_path) == []  # an existing, empty directory: no agreement yet


@pytest.mark.parametrize("command", [
    ["agreements", "check", "--lang", "de"],
    ["report", "sharing", "--venue", "gemeaux", "--data-dir", "{tmp}", "--lang", "de"],
    ["consent", "receipt", "--venue", "gemeaux", "--person-ref", "x", "--data-dir", "{tmp}", "--lang", "de"],
    ["consent", "receipt", "--venue", "gemeaux", "--person-ref", "x", "--data-dir", "{tmp}", "--format", "xml"],
    ["import", "csv", "{tmp}/f.csv", "--venue", "gemeaux", "--profile", "generic", "--dry-run", "--lang", "de"],
], ids=lambda c: " ".join(c[:2] + c[-2:]))
def test_an_unknown_language_or_format_is_refused_before_anything_runs(command: list[str], tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("a\n1\n")
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in command])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and ("'de'" in result.output or "'xml'" in result.output), result.output
    assert "is not one of" in result.output, result.output  # refused by the option itself, listing the choices


def test_report_sharing_names_a_malformed_since_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "sharing", "--venue", "gemeaux", "--data-dir", str(tmp_path),
                                      "--since", "garbage"])
    assert result.exit_code == 2 and "--since" in result.output and "YYYY-MM-DD" in result.output, result.output


@pytest.mark.parametrize("email", ["", "notanemail", "a@", "@theatre.fr", "a b@theatre.fr"])
def test_a_receipt_for_something_that_is_not_an_e_mail_is_refused_first(email: str, tmp_path: Path) -> None:
    """Its reference would be another person's ('' is every anonymous event's), or nobody's: a DPO
    would read 'no consent recorded' for a typo. Refused before the ledger is read."""
    result = CliRunner().invoke(app, ["consent", "receipt", "--venue", "gemeaux", "--email", email,
                                      "--data-dir", str(tmp_path)],
                                env={"TECHNE_SUBJECT_KEY": "k" * 32, "TECHNE_BOOTSTRAP": "127.0.0.1:1"})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "adresse e-mail invalide" in result.output and "not an e-mail address" in result.output, result.output
