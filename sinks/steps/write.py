"""Write step: one handler call per topic, with capped exponential backoff on "unavailable".

:class:`RetryingWrite` calls ``handler.write(batches)``. When the store raises
:class:`~core.errors.StoreUnavailable` it counts the error, schedules the next attempt
(0.2 s doubling to 5 s, :class:`~sinks.base.Backoff`) and returns ``None``: the caller keeps the
*same* batches, commits nothing, and pauses consumption (explicit backpressure) until
:meth:`succeeded` says the store is back. No hidden retry loop: the caller decides when to call
again (:meth:`due`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from core.errors import StoreUnavailable
from sinks import metrics
from sinks.base import Backoff, Batch, WriteResult, batches_token

log = logging.getLogger(__name__)


class Writer(Protocol):
    table: str

    async def write(self, batches: Sequence[Batch[Any]]) -> list[WriteResult]: ...


class RetryingWrite:
    """``await write(handler, batches) -> results | None`` (None: unavailable, retry scheduled)."""

    def __init__(self, owner: str, clock: Callable[[], float], backoff: Backoff | None = None) -> None:
        self.owner, self.clock = owner, clock
        self.backoff = backoff or Backoff()
        self.retry_at: float | None = None

    @property
    def retrying(self) -> bool:
        return self.retry_at is not None

    def due(self, now: float | None = None) -> bool:
        """Whether a write may be attempted now (not waiting for a backoff delay)."""
        return self.retry_at is None or (self.clock() if now is None else now) >= self.retry_at

    async def __call__(self, handler: Writer, batches: Sequence[Batch[Any]]) -> list[WriteResult] | None:
        started = time.perf_counter()
        try:
            results = await handler.write(batches)
        except StoreUnavailable as exc:
            metrics.INSERT_ERRORS.labels(self.owner, handler.table).inc()
            log.warning("%s: writing %s failed, will retry: %s", self.owner, batches_token(batches), exc)
            return None
        metrics.INSERT_SECONDS.labels(self.owner, handler.table).observe(time.perf_counter() - started)
        return results

    def failed(self) -> None:
        """Schedule the next attempt after the next backoff delay."""
        self.retry_at = self.clock() + self.backoff.next()

    def succeeded(self) -> bool:
        """Every pending write went through; true if the step was retrying (the caller resumes)."""
        if self.retry_at is None:
            return False
        self.retry_at = None
        self.backoff.reset()
        return True
