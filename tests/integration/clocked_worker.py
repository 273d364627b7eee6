"""A stream worker whose clock is read from a file (tests only): the consent-expiry scan's "now".

``python -m tests.integration.clocked_worker CLOCK_FILE`` runs :func:`streams.worker.run_worker`
with settings from the environment and ``clock`` = the ISO time written in ``CLOCK_FILE``, so a
test advances time by rewriting the file instead of waiting 13 months.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from core.settings import Settings
from streams.worker import run_worker


def main() -> None:
    path = Path(sys.argv[1])
    del sys.argv[1:]
    run_worker(Settings(), clock=lambda: datetime.fromisoformat(path.read_text().strip()))


if __name__ == "__main__":
    main()
