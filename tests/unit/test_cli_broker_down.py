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
