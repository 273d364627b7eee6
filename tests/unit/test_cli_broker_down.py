"""A service started while its broker is unreachable (down, or a wrong --bootstrap) stops with one
line naming the address, exit 1 (transient: its supervisor restarts it), not a client traceback."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRETS = {"TECHNE_SUBJECT_KEY": "k" * 32, "TECHNE_PSEUDONYM_KEYS": '{"1": "' + "p" * 32 + '"}',
           "TECHNE_DATAKEY_MASTER_KEYS": '{"1": "' + base64.b64encode(b"m" * 32).decode() + '"}'}


@pytest.mark.parametrize("command", [["sink", "--partner", "observatoire"], ["sink", "--audit"], ["worker"]],
                         ids=" ".join)
def test_a_service_without_its_broker_says_so_in_one_line(command: list[str], tmp_path: Path) -> None:
    techne = str(Path(sys.executable).with_name("techne"))
    done = subprocess.run([techne, *command, "--bootstrap", "127.0.0.1:1", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **SECRETS})
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "cannot reach Kafka at 127.0.0.1:1" in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("command", [["dlq", "show", "--stage", "decode"], ["lag"],
                                     ["consent", "receipt", "--venue", "gemeaux", "--person-ref", "x"],
                                     ["backup", "ledger", "{tmp}/ledger.jsonl.gz"]], ids=lambda c: " ".join(c[:2]))
def test_a_one_shot_command_without_its_broker_prints_one_line(command: list[str], tmp_path: Path) -> None:
    """Not the Kafka client's own log lines ('Unable connect to …', once per attempt) before it."""
    techne = str(Path(sys.executable).with_name("techne"))
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    done = subprocess.run([techne, *args], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2],
                          env={**os.environ, **SECRETS, "TECHNE_BOOTSTRAP": "127.0.0.1:1",
                               "TECHNE_DATA_DIR": str(tmp_path)})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
    assert "127.0.0.1:1" in lines[0] and "Traceback" not in done.stderr, lines
