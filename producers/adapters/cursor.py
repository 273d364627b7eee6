"""A poll connector's cursor on disk: a small JSON object, replaced atomically (write, fsync, rename).

Saved only after every event of a round was acknowledged by Kafka (producers/poll.py), so a crash
re-polls rather than skips; a lost cursor re-polls everything, which is harmless because event ids
are derived from the vendor objects (the same object in the same state gives the same id).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class CursorFile:
    """``{vendor event id: unix time}`` of one venue's source, at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        return {str(k): int(v) for k, v in json.loads(self.path.read_text()).items()}

    def save(self, cursor: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as f:
            json.dump(cursor, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
