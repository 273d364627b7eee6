"""The documentation names only what exists: variables, defaults, commands.

- every ``TECHNE_*`` variable that README.md, deploy/README.md, deploy/env.example or docs/*.md
  name is a setting (``core/settings.py``, ``techne/console/security.py``) or one of the few
  variables read elsewhere (:data:`NOT_SETTINGS`, each checked in the file said to read it);
- every setting is in deploy/env.example (the complete list; the README's table is a selection);
- a default the README's configuration table or env.example's tunables section states is the
  code's default;
- every ``techne ...`` command they quote names real subcommands and options (the real parser).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from core.settings import Settings
from techne.cli import app
from techne.console.security import ConsoleSettings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "deploy" / "README.md", ROOT / "deploy" / "env.example",
        *sorted((ROOT / "docs").glob("*.md"))]
NOT_SETTINGS = {  # variable -> the file that reads it
    "TECHNE_KAFKA_VERSION": "techne/local.py", "TECHNE_KAFKA_CACHE": "techne/local.py",
    "TECHNE_PUBLIC_HOST": "docker-compose.yml", "TECHNE_REGISTRY_HOST": "docker-compose.yml",
    "TECHNE_CONSOLE_HOST": "docker-compose.yml", "TECHNE_TLS": "docker-compose.yml",
    "TECHNE_KAFKA_CONTROLLER_PASSWORD": "docker-compose.yml",
    "TECHNE_GRAFANA_CLICKHOUSE_PASSWORD": "docker-compose.yml",
    "TECHNE_TEST_CLICKHOUSE_URL": "tests/integration/test_sink_server.py",
}
VARIABLE = re.compile(r"TECHNE_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])")


def _defaults() -> dict[str, Any]:
    out = {}
    for cls, prefix in ((Settings, "TECHNE_"), (ConsoleSettings, "TECHNE_CONSOLE_")):
        for name, field in cls.model_fields.items():
            default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
            out[f"{prefix}{name.upper()}"] = default
    return out


def _same(doc: str, code: Any) -> bool:
    """Whether a default written in a doc is ``code``'s value."""
    doc = doc.strip().strip("`'")
    if code is None or code == {} or code == []:
        return doc in {"", "—", "off", "{}"} or doc.startswith("— (")
    if isinstance(code, bool):
        return doc == str(code).lower()
    if isinstance(code, int | float):
        return float(doc.replace(",", "")) == float(code)
    if isinstance(code, dict):
        return json.loads(doc) == code
    return doc.rstrip("/") == str(code)


def test_every_variable_named_is_read_and_every_setting_is_in_env_example() -> None:
    settings = set(_defaults())
    for doc in DOCS:
        for name in set(VARIABLE.findall(doc.read_text(encoding="utf-8"))):
            if name not in settings:
                assert name in NOT_SETTINGS, f"{doc.relative_to(ROOT)} names {name}, which nothing reads"
                assert name in (ROOT / NOT_SETTINGS[name]).read_text(encoding="utf-8"), name
    example = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?(TECHNE_[A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert not settings - documented, f"settings missing from deploy/env.example: {sorted(settings - documented)}"


def test_defaults_stated_in_readme_and_env_example_are_the_code_defaults() -> None:
    defaults = _defaults()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `TECHNE_")]
    assert len(rows) >= 20
    for row in rows:
        names = VARIABLE.findall(row[0])
        cell = row[-1].strip(" |")
        unset = cell == "off" or cell.startswith("—")  # "—", "— (required by …)": no default
        values = [cell] * len(names) if unset else re.findall(r"`([^`]*)`", cell) or [cell]
        assert len(values) == len(names), f"README: one default per variable in {row[0]}"
        for name, value in zip(names, values, strict=True):
            assert _same(value, defaults[name]), f"README says {name} defaults to {value}, the code {defaults[name]!r}"
    example = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    tunables = example.split("--- tunables", 1)[1]
    for name, value in re.findall(r"^#(TECHNE_[A-Z0-9_]+)=(.*)$", tunables, flags=re.MULTILINE):
        if defaults[name] is not None:  # else the value is an example
            assert _same(value, defaults[name]), f"env.example: {name}={value}, the default is {defaults[name]!r}"


def _quoted_commands(text: str) -> list[str]:
    """Every ``techne …`` in a code block line or a code span, also after ``&&`` or ``docker compose run``."""
    lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)
             for line in re.sub(r"\\\n\s*", " ", block).splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL).replace("\n", " ").replace("# ", " ")
    quoted = [*lines, *re.findall(r"`([^`]+)`", prose)]
    return [m for q in quoted for m in re.findall(r"(?:^|(?<=[\s/]))(techne\s+[a-z][^#&;]*)", q)]


def _options(*commands: Any) -> set[str]:
    return {o for c in commands for p in c.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def _problems(command: Any, words: list[str], path: str) -> list[str]:
    """What in ``words`` (after ``path``) the parser does not know; placeholders pass."""
    for i, word in enumerate(words):
        pipe = word == "|" and not "".join(words[i + 1:i + 2]).startswith("--")  # else: `(--a X | --b Y)`
        if word in {">", "&&"} or pipe:  # the rest is the shell's
            return []
        word = word.strip("[]()")
        if isinstance(command, typer.core.TyperGroup) and word and not word.startswith("-"):
            if re.fullmatch(r"[A-Z]+|<[^>]+>|…|\.\.\.", word):  # `techne insights NAME --json`: some NAME takes it
                known = _options(*command.commands.values())
                options = [w.strip("[]()").split("=")[0] for w in words[i + 1:]]
                wrong = [o for o in options if o.startswith("--") and o not in known]
                return [f"{path} {word}: no subcommand takes {wrong[0]}"] if wrong else []
            names = word.split("|")
            unknown = [n for n in names if n not in command.commands]
            if unknown:
                return [f"{path}: no subcommand {unknown[0]!r}"]
            return [p for n in names for p in _problems(command.commands[n], words[i + 1:], f"{path} {n}")]
        for option in word.split("|"):
            option = option.strip("[]()").split("=")[0]
            if option.startswith("--") and option not in _options(command):
                return [f"{path}: no option {option}"]
    return []


def test_every_quoted_techne_command_parses() -> None:
    root = typer.main.get_command(app)
    assert _problems(root, ["sink", "--partnr", "P"], "techne") == ["techne sink: no option --partnr"]
    assert _problems(root, ["backup", "create|restor", "DIR"], "techne") == ["techne backup: no subcommand 'restor'"]
    placeholder = _problems(root, ["insights", "NAME", "[--jsn]"], "techne")
    assert placeholder == ["techne insights NAME: no subcommand takes --jsn"]
    problems = []
    for doc in DOCS:
        for quoted in _quoted_commands(doc.read_text(encoding="utf-8")):
            words = re.findall(r'"[^"]*"|\'[^\']*\'|\S+', quoted.replace("\\|", "|"))[1:]
            problems += [f"{doc.relative_to(ROOT)}: `{quoted}`: {p}" for p in _problems(root, words, "techne")]
    assert not problems, "\n".join(problems)
