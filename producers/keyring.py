"""The producer side of crypto-shredding: one data key per subject, created on demand, cached a while.

:meth:`Keyring.key_for` gives the data key to seal a subject's event with. A key this process
created is new to Kafka: until :meth:`Keyring.confirm` is told its key-topic record is durable
(acknowledged by Kafka, or fsynced into the spool ahead of the events it opens), every event
sealed with it carries that record in ``Prepared.keys``, and every sender writes those records
*before* the events (:func:`producers.kafka.send_in_order`): a consumer that reads an event can
always find its key, unless it was shredded.

Cache lifetime. A key is used for new events for at most ``ttl`` seconds after its creation
(``TECHNE_DATAKEY_CACHE_SECONDS``); then a new key is created for that subject. This bounds how
long a shredded key can still be in a producer's memory (and used for events nobody can read
back), and the size of the cache (expired entries are evicted in creation order).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.datakeys import DataKey, MasterKeys
from core.topics import KEYS


@dataclass
class _Entry:
    key: DataKey
    created: float
    record: bytes | None  # the wrapped key-topic value while not yet known durable


class Keyring:
    """Per-subject data keys of one producer process (thread-safe: the console imports in a thread)."""

    def __init__(self, masters: MasterKeys, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.masters, self.ttl, self._clock = masters, ttl, clock
        self._keys: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def key_for(self, subject: str) -> tuple[DataKey, tuple[str, bytes, bytes] | None]:
        """``(data key, key-topic record (topic, key, value) or None once durable)`` for ``subject``."""
        with self._lock:
            now = self._clock()
            self._evict(now)
            entry = self._keys.get(subject)
            if entry is None:
                key = DataKey.generate(subject)
                entry = self._keys[subject] = _Entry(key, now, self.masters.wrap(key))
            if entry.record is None:
                return entry.key, None
            return entry.key, (KEYS, entry.key.record_key, entry.record)

    def confirm(self, record_keys: Iterable[bytes]) -> None:
        """The key-topic records ``record_keys`` are durable: stop attaching them to events."""
        with self._lock:
            for rkey in record_keys:
                subject = rkey.decode().rpartition("/")[0]
                entry = self._keys.get(subject)
                if entry is not None and entry.key.record_key == rkey:
                    entry.record = None

    def _evict(self, now: float) -> None:
        while self._keys:
            subject, entry = next(iter(self._keys.items()))
            if now - entry.created < self.ttl:
                return
            del self._keys[subject]

    def __len__(self) -> int:
        return len(self._keys)
