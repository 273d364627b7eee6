"""CPU time and peak memory of a process, read from ``/proc`` (Linux), for the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far, all threads (``OSError`` if gone)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (``VmHWM``) of process ``pid`` in MiB; NaN if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rss_mib(pid: int) -> dict[str, float]:
    """Current resident memory of ``pid`` in MiB: ``rss`` (VmRSS), ``anon`` (RssAnon, private to the
    process) and ``file`` (RssFile: mapped files, e.g. the chDB library, shared between processes);
    empty if the process is gone."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name = line.split(None, 1)[0] if line else ""
            if name in fields:
                out[fields[name]] = int(line.split()[1]) / 1024
    except OSError:
        return {}
    return out
