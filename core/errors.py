"""The one exception tree of the bus.

Every error we raise on purpose derives from :class:`TechneError`. Invalid input is an
:class:`InvalidMessage` carrying its context (stage, reason, and the offending location), so
that it can be answered with a 4xx or written to a dead-letter topic without losing why.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TechneError(Exception):
    """Base class of every error the bus raises on purpose."""


class ConfigError(TechneError):
    """Configuration (settings, agreements, venues) is invalid; raised at startup."""


@dataclass
class InvalidMessage(TechneError):
    """A message cannot be processed and never will be: it belongs in a dead-letter topic.

    ``stage`` names the step that rejected it (``decode``, ``validate``, ...), ``reason`` is a
    short machine-readable code and ``detail`` a human explanation free of personal data.
    """

    stage: str
    reason: str
    detail: str = ""
    context: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.stage}/{self.reason}: {self.detail}"


class StoreUnavailable(TechneError):
    """The analytical store cannot be written right now (retry later; nothing was committed)."""


class StoreLocked(TechneError):
    """An embedded store directory is held by another process (e.g. a running sink)."""
