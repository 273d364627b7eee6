"""The reading side of crypto-shredding: every data key of the key topic, in memory, and shredding.

:class:`KeyStore` reads ``techne.keys`` (compacted; :mod:`core.datakeys` for the record format)
from its beginning with a plain consumer (no group: every worker holds every key), then tails it.

* :meth:`KeyStore.lookup` answers from memory: the cipher of ``(subject, kid)``, or ``None``.
  A key whose record is on the topic but cannot be unwrapped (a master key version this process
  lacks, or one that differs from the producers': a configuration error, or a damaged record) is
  not a shredded key: its lookup raises :class:`InvalidMessage` (``decode`` / ``key_unreadable``),
  so the event goes to ``dlq.decode``, counted and replayable once the configuration is fixed,
  instead of being taken for an erased person's (``subject_erased``, nothing kept).
* Read your writes: producers write a key's record, acknowledged, *before* any event sealed with
  it, so a key missing when an event is read is either not read yet or shredded.
  :meth:`KeyStore.catch_up` reads up to the key topic's current end offsets; a key still missing
  after it was shredded. The worker agent calls it when :meth:`lookup_pending` raised
  :class:`KeyPending`, then handles the message again with :meth:`lookup` (missing = shredded).
* :meth:`KeyStore.key_for` gives the worker a key to seal the events it writes to a raw topic
  itself (lapsed consents fed back, streams/steps/expiry.py).
* :meth:`KeyStore.expired`: keys older than the longest a sealed event can stay on a topic are
  forgotten and tombstoned by the worker (``key_max_age``), so no data key outlives its events.
* :meth:`KeyStore.shred` catches up, then writes a tombstone for every key of a subject (those it
  cannot unwrap included: another process may) through
  the caller's producer and forgets them at once; other readers drop them when they read the
  tombstones.

A deleted key is gone from this process's memory when its tombstone is read (at once in the
worker that shreds it). How long its wrapped copy can remain in the key topic's log is bounded
by the topic's compaction settings (:meth:`core.topics.TopicPolicy.configs`, docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.datakeys import DataKey, MasterKeys, parse_record_key, record_key
from core.errors import ConfigError, InvalidMessage, TechneError
from core.kafka_auth import KafkaAuth, aiokafka_kwargs
from core.topics import KEYS

log = logging.getLogger("techne.keystore")


class KeyPending(TechneError):
    """A data key is not in memory yet: catch up with the key topic, then look again."""


class KeyStore:
    """Every data key of the key topic, by subject and kid."""

    def __init__(self, bootstrap: str, masters: MasterKeys, auth: KafkaAuth | None = None) -> None:
        self.masters = masters
        self._bootstrap, self._auth = bootstrap, auth or KafkaAuth()
        self._keys: dict[str, dict[bytes, DataKey]] = {}
        self._unreadable: dict[str, dict[bytes, float]] = {}  # subject -> kid -> when it was read
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []
        self._tail: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.invalid = 0  # key records that could not be opened (logged, never fatal)

    @property
    def consumer_started(self) -> bool:
        return self._consumer is not None

    def __len__(self) -> int:
        return sum(len(k) for k in self._keys.values())

    def lookup(self, subject: str, kid: bytes) -> AESGCM | None:
        """The cipher of ``(subject, kid)``; ``None`` when the key does not exist (shredded);
        :class:`InvalidMessage` when its record exists but cannot be unwrapped (module doc)."""
        keys = self._keys.get(subject)
        found = keys.get(kid) if keys else None
        if found is not None:
            return found.aead
        if kid in self._unreadable.get(subject, {}):
            raise InvalidMessage("decode", "key_unreadable", "the event's data key is on the key topic but this "
                                 "worker cannot unwrap it (TECHNE_DATAKEY_MASTER_KEYS: a version missing, or not "
                                 "the producers' secret); replay this dead letter once fixed")
        return None

    def lookup_kid(self, kid: bytes) -> AESGCM | None:
        """The cipher of data key ``kid`` whatever its subject (for tools that read records
        without their Kafka key); a scan of every subject."""
        for keys in self._keys.values():
            if kid in keys:
                return keys[kid].aead
        return None

    def lookup_pending(self, subject: str, kid: bytes) -> AESGCM:
        """Like :meth:`lookup`, but a missing key raises :class:`KeyPending`."""
        found = self.lookup(subject, kid)
        if found is None:
            raise KeyPending(subject)
        return found

    def kids(self, subject: str) -> list[bytes]:
        """Every data key id of ``subject`` on the key topic, unreadable ones included."""
        return sorted({*self._keys.get(subject, {}), *self._unreadable.get(subject, {})})

    async def start(self, *, tail: bool = True) -> None:
        """Read the key topic to its current end; with ``tail``, keep reading it in the background."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, request_timeout_ms=10_000,
                                    **aiokafka_kwargs(self._auth))
        await admin.start()
        try:
            described = await admin.describe_topics([KEYS])
        finally:
            await admin.close()
        parts = {p["partition"] for d in described if d["topic"] == KEYS and not d["error_code"]
                 for p in d["partitions"]}
        if not parts:
            raise ConfigError(f"topic {KEYS} not found: create the bus topics first (`techne worker` does)")
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", request_timeout_ms=10_000,
                                    **aiokafka_kwargs(self._auth))
        await consumer.start()
        self._consumer = consumer
        self._tps = [TopicPartition(KEYS, p) for p in sorted(parts)]
        consumer.assign(self._tps)
        # no seek_to_beginning(): with auto_offset_reset="earliest" a fresh assignment starts at the log start
        await self.catch_up()
        if tail:
            self._tail = asyncio.create_task(self._tail_loop(), name="keystore-tail")

    async def stop(self) -> None:
        if self._tail is not None:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail
            self._tail = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def catch_up(self) -> None:
        """Read until every partition of the key topic reaches its end offset as of now."""
        assert self._consumer is not None, "key store not started"
        async with self._lock:
            ends = await self._consumer.end_offsets(self._tps)
            while [tp for tp in self._tps if await self._consumer.position(tp) < ends[tp]]:
                await self._read(500)

    async def shred(self, subject: str, send: Callable[[str, bytes, None], Awaitable[Awaitable[object]]]) -> int:
        """Tombstone every data key of ``subject`` with ``send(topic, key, None)`` (which returns the
        future of the acknowledgement), wait for the acknowledgements, forget the keys; return how
        many there were."""
        await self.catch_up()
        kids = self.kids(subject)
        acks = [await send(KEYS, record_key(subject, kid), None) for kid in kids]
        self._keys.pop(subject, None)
        self._unreadable.pop(subject, None)
        await asyncio.gather(*acks)
        return len(kids)

    def expired(self, now: float, max_age: float) -> list[bytes]:
        """Forget every key created more than ``max_age`` seconds before ``now`` (no event still on
        a topic can need it); return their record keys, for the caller to tombstone. Unreadable
        records are forgotten ``max_age`` after they were read, never tombstoned (a process with
        the right master key may still need them)."""
        for subject, unread in list(self._unreadable.items()):
            for kid, seen in list(unread.items()):
                if now - seen > max_age:
                    del unread[kid]
            if not unread:
                del self._unreadable[subject]
        out: list[bytes] = []
        for subject, keys in list(self._keys.items()):
            for kid, key in list(keys.items()):
                if now - key.created_at > max_age:
                    del keys[kid]
                    out.append(key.record_key)
            if not keys:
                del self._keys[subject]
        return out

    async def key_for(self, subject: str, send: Callable[[str, bytes, bytes], Awaitable[Awaitable[object]]]) -> DataKey:
        """A data key to seal an event of ``subject`` written by the worker itself (a lapsed
        consent fed back): its newest key, else a new one written (acknowledged) with ``send``."""
        keys = self._keys.get(subject)
        newest = max(keys.values(), key=lambda k: k.created_at) if keys else None
        if newest is not None and time.time() - newest.created_at < 3600:
            return newest
        key = DataKey.generate(subject)
        await (await send(KEYS, key.record_key, self.masters.wrap(key)))
        self._keys.setdefault(subject, {})[key.kid] = key
        return key

    async def _tail_loop(self) -> None:
        while True:
            try:
                async with self._lock:
                    await self._read(1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep tailing; catch_up() surfaces persistent failures
                log.warning("key topic read failed: %s", type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _read(self, timeout_ms: int) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(*self._tps, timeout_ms=timeout_ms)
        for batch in batches.values():
            for msg in batch:
                self.apply(msg.key, msg.value)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Fold one key-topic record into memory (a tombstone removes the key; a record that
        cannot be unwrapped is remembered as unreadable, see the module doc)."""
        if key is None:
            return
        try:
            subject, kid = parse_record_key(key)
        except InvalidMessage as exc:
            self.invalid += 1
            log.warning("key record skipped: %s", exc.reason)
            return
        if value is None:
            for table in (self._keys, self._unreadable):
                known = table.get(subject)
                if known is not None:
                    known.pop(kid, None)
                    if not known:
                        del table[subject]
            return
        try:
            data_key = self.masters.unwrap(key, value)
        except InvalidMessage as exc:
            self.invalid += 1
            self._unreadable.setdefault(subject, {})[kid] = time.time()
            log.warning("key record cannot be unwrapped (%s): its events go to dlq.decode as key_unreadable",
                        exc.reason)
            return
        unread = self._unreadable.get(subject)
        if unread is not None and unread.pop(kid, None) is not None and not unread:
            del self._unreadable[subject]
        self._keys.setdefault(data_key.subject, {})[data_key.kid] = data_key
