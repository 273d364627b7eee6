"""``techne demo`` stopped by SIGTERM or Ctrl-C (SIGINT) stops every child it started (broker,
gateway, worker, sinks) and prints the summary so far: a real ``techne demo`` subprocess, the
real signal, then /proc says whether any of its descendants survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of ``pid`` from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root``: pid -> start time (to tell a reused pid apart)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[0], []).append(int(entry))
            starts[int(entry)] = stat[2]
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = starts[pid]
        todo += children.get(pid, [])
    return found


def survivors(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` still running (a zombie or a reused pid does not count)."""
    alive = []
    for pid, start in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == start and stat[1] != "Z":
            alive.append(pid)
    return alive


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, f"demo exited early ({proc.returncode}):\n{log.read_text(errors='replace')}"
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} within {timeout:.0f}s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_demo_stopped_by_a_signal_stops_every_child_and_prints_the_summary(tmp_path: Path,
                                                                            signum: signal.Signals) -> None:
    log = tmp_path / "demo.out"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "techne.cli", "demo", "--rate", "20",
                                 "--data-dir", str(tmp_path / "data")],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    started: dict[int, str] = {}
    try:
        _wait_for(log, "bus up:", proc, 240)
        _wait_for(log, "sent ", proc, 60)  # traffic is flowing: the signal lands mid-send
        started = descendants(proc.pid)
        names = {Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ") for p in started}
        assert any(b"kafka.Kafka" in n for n in names), "the broker is a child of the demo"
        assert sum(b"techne.cli" in n for n in names) >= 4, names  # gateway, worker, sinks
        proc.send_signal(signum)
        rc = proc.wait(150)
        text = log.read_text(errors="replace")
        assert rc == 128 + signum, text[-3000:]
        assert f"stopped by {signum.name}" in text
        assert "every child process stopped" in text
        sent = int(text.rsplit("; sent ", 1)[1].split()[0])
        assert sent > 0, "the summary so far counts what was sent"
        assert "Traceback" not in text
        assert survivors(started) == [], "no child of the demo may survive it"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in survivors(started):  # only if the test failed: do not leave them running
            os.kill(pid, signal.SIGKILL)


def test_survivors_sees_a_live_child_and_not_a_dead_one() -> None:
    """Negative control of the /proc check: it must report a child that is still running."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        seen = descendants(os.getpid())
        assert child.pid in seen
        assert survivors({child.pid: seen[child.pid]}) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert survivors({child.pid: seen[child.pid]}) == []
