"""The stream worker ends after a poison flood even when Faust's shutdown does not."""

from __future__ import annotations

import subprocess
import sys
import time


def test_exit_soon_ends_a_process_that_would_not_end() -> None:
    """The worker's last resort after a poison flood (streams.app.CRASH_EXIT_S)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", "import time; from streams.app import exit_soon; "
                           "exit_soon(0.5, 3); time.sleep(60)"], timeout=50, check=False)
    assert done.returncode == 3
    assert time.monotonic() - started < 45
