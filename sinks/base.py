"""The one store interface, the per-partition batch and what a batch write reports (pure logic).

A :class:`Store` is a transport to an analytical database (embedded chDB or a ClickHouse
server): it runs SQL and inserts pre-encoded data, nothing more. Every statement, table
definition and idempotence rule lives in the modules that use it (:mod:`sinks.tables`,
:mod:`sinks.orders`, :mod:`sinks.erasure`, :mod:`sinks.audit`), so both backends run the very
same SQL. Every store method raises :class:`~core.errors.StoreUnavailable` when the store
cannot do its job right now; callers retry the same batch later and commit nothing meanwhile.

Idempotence of a batch write is layered (see :mod:`sinks.orders` for the partner tables):

1. items already stored (same ``event_id``, or same Kafka offset for the audit log) or repeated
   inside the batch are dropped before the insert (exact: each store has a single writer);
2. the insert carries a deduplication token derived from the batch's offsets *and* the keys
   actually inserted (:func:`insert_token`), so the engine drops a block it has already seen
   (a retry whose first attempt did land) but never a block with different content;
3. tables are ``ReplacingMergeTree`` keyed on the identity, so a duplicate that slipped through
   (e.g. two writers racing on a server during a rebalance) collapses at merge / with ``FINAL``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from core.errors import InvalidMessage

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0

T = TypeVar("T")
Params = Mapping[str, Any]
"""Query parameters bound to ``{name:Type}`` placeholders: ``str``, ``int`` or lists of ``str``."""


class Store(Protocol):
    """A transport to an analytical database. Methods are blocking; call them off the event loop."""

    def command(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing (DDL, ``DELETE``, ``ALTER``)."""

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Run a read query; values come back as JSON types (numbers, strings, lists, null)."""

    def insert(self, table: str, columns: Sequence[str], data: bytes, fmt: str, token: str) -> None:
        """Insert ``data`` (encoded in ClickHouse input format ``fmt``) into ``columns`` of the
        qualified ``table`` in one statement carrying ``insert_deduplication_token = token``."""

    def use(self, database: str) -> None:
        """Make ``database`` the current one, for ad-hoc queries naming tables unqualified."""

    def close(self) -> None:
        """Release the store (idempotent)."""


@dataclass
class Batch(Generic[T]):
    """Messages of one topic-partition waiting to be written, in offset order.

    Every consumed offset is recorded, including messages that produced no item (invalid,
    handed to the invalid-message hook), so that committing ``max_offset + 1`` moves past all
    of them. ``offsets[i]`` is the offset of ``items[i]``, ``keys[i]`` its message key when
    given (for a dead letter of an item refused at write time). ``ready`` is true once
    ``max_messages`` messages are held or the first one is ``max_age_s`` old (``now`` comes
    from a monotonic clock).
    """

    topic: str
    partition: int
    max_messages: int
    max_age_s: float
    items: list[T] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    messages: int = 0
    min_offset: int = -1
    max_offset: int = -1
    started_at: float | None = None

    def add(self, offset: int, item: T | None, now: float, key: bytes | None = None) -> None:
        """Record message ``offset`` and its item (``None``: the message yields no item)."""
        if self.messages and offset <= self.max_offset:
            raise ValueError(f"offset {offset} not after {self.max_offset} in {self.topic}[{self.partition}]")
        if not self.messages:
            self.min_offset, self.started_at = offset, now
        self.max_offset = offset
        self.messages += 1
        if item is not None:
            self.items.append(item)
            self.offsets.append(offset)
            self.keys.append(key)

    def extend(self, offsets: list[int], items: list[T], now: float, keys: list[bytes | None] | None = None) -> None:
        """Record messages that all yielded an item (``offsets`` increasing): :meth:`add` in bulk."""
        if not offsets:
            return
        if self.messages and offsets[0] <= self.max_offset:
            raise ValueError(f"offset {offsets[0]} not after {self.max_offset} in {self.topic}[{self.partition}]")
        if not self.messages:
            self.min_offset, self.started_at = offsets[0], now
        self.max_offset = offsets[-1]
        self.messages += len(offsets)
        self.items += items
        self.offsets += offsets
        self.keys += keys if keys is not None else [None] * len(offsets)

    def key_of(self, offset: int) -> bytes | None:
        """The key recorded with the item at ``offset`` (``None`` if none was)."""
        i = bisect_left(self.offsets, offset)
        found = i < len(self.offsets) and self.offsets[i] == offset and i < len(self.keys)
        return self.keys[i] if found else None

    def ready(self, now: float) -> bool:
        if not self.messages or self.started_at is None:
            return False
        return self.messages >= self.max_messages or now - self.started_at >= self.max_age_s

    def deadline(self) -> float | None:
        """Monotonic time at which the batch becomes ready by age (``None`` when empty)."""
        return None if self.started_at is None else self.started_at + self.max_age_s

    def token(self) -> str:
        """``{topic}-{partition}-{min_offset}-{max_offset}``: stable across retries of this batch."""
        return f"{self.topic}-{self.partition}-{self.min_offset}-{self.max_offset}"

    def __len__(self) -> int:
        return self.messages


def batches_token(batches: Sequence[Batch[Any]]) -> str:
    """Token of several batches of one topic written together: ``{topic}-{p}-{min}-{max}+...``."""
    return f"{batches[0].topic}-" + "+".join(f"{b.partition}-{b.min_offset}-{b.max_offset}" for b in batches)


@dataclass(frozen=True)
class Rejected:
    """A message found invalid only when its batch was written (the engine refused it)."""

    partition: int
    offset: int
    error: InvalidMessage
    value: bytes | None


@dataclass(frozen=True)
class WriteResult:
    """What one batch write did: rows inserted, duplicates dropped, rows withheld on purpose
    (``suppressed``: erased or past retention), invalid messages found at write time."""

    inserted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: tuple[Rejected, ...] = ()


def first_occurrences(keys: Iterable[str], existing: set[str]) -> list[int]:
    """Indices of the keys not in ``existing`` and not seen earlier in ``keys``."""
    seen = set(existing)
    kept: list[int] = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            kept.append(i)
    return kept


def insert_token(batch_token: str, keys: Iterable[str]) -> str:
    """Batch token plus a digest of the keys inserted: same content -> same token, else different.

    Needed because a failed attempt may have stored part of a batch: the retry then inserts
    only the remainder, which must not be mistaken for the already-stored block.
    """
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    return f"{batch_token}-{digest}"


class Backoff:
    """Capped exponential retry delays: ``start``, doubling, at most ``cap``; :meth:`reset` restarts."""

    def __init__(self, start: float = BACKOFF_START_S, cap: float = BACKOFF_MAX_S) -> None:
        self.start, self.cap, self._next = start, cap, start

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.start
