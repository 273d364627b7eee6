"""A poll connector's cursor on disk: a small JSON object, replaced atomically (write, fsync, rename).

Saved only after every event of a round was acknowledged by Kafka (producers/poll.py), so a crash
re-polls rather than skips; a lost cursor re-polls everything, which is harmless because event ids
are derived from the vendor objects (the same object in the same state gives the same id).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from producers.adapters.consent import SourceMapping


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


class PolledAccount:
    """What every poll connector of one venue's account holds: where the API is, the venue's
    discipline, its consent mapping, and the cursor file ``<state_dir>/<venue>-<name>.json``.
    Subclasses set ``name`` and their credentials (``_auth``) and implement ``fetch``."""

    name = ""

    def __init__(self, venue_id: str, *, base_url: str, state_dir: Path, discipline: str = "autre",
                 consent: SourceMapping | None = None) -> None:
        self.venue_id, self.base_url, self.discipline = venue_id, base_url.rstrip("/"), discipline
        self.consent = consent
        self.cursor_path = state_dir / f"{venue_id}-{self.name}.json"

    def load_cursor(self) -> dict[str, int]:
        return CursorFile(self.cursor_path).load()

    def save_cursor(self, cursor: dict[str, int]) -> None:
        CursorFile(self.cursor_path).save(cursor)
