"""The one Kafka producer of the venue side.

Idempotent (``enable_idempotence=True``), ``acks=all``: :meth:`EventProducer.send` returns
only once the broker acknowledged the write on all in-sync replicas, or raises
:class:`ProduceFailed` after ``timeout`` seconds. :meth:`EventProducer.enqueue` hands a record
to the client and returns the future of its acknowledgement, for callers that send many records
before waiting (batches, spool replay). Note that aiokafka's idempotent producer keeps retrying
a record that already left the buffer until the broker acknowledges it: a future that outlived
its caller's deadline may still succeed later (the spool relies on that, see spool.py).

No linger by default: records handed over while a produce request is in flight go together in
the next one, so concurrent webhooks already share requests; a linger only delayed every answer
(issue 19, measured in README's performance section).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from core.errors import ProduceFailed as ProduceFailed  # defined with the whole tree
from core.kafka_auth import KafkaAuth, aiokafka_kwargs
from producers.ingest import Prepared, confirm_keys, split_keys


class EventProducer:
    """Thin wrapper over :class:`AIOKafkaProducer` with the delivery settings we require."""

    def __init__(self, bootstrap: str, *, timeout: float = 10.0, client_id: str = "techne-gateway",
                 auth: KafkaAuth | None = None, linger_ms: int = 0) -> None:
        self.timeout = timeout
        self.linger_ms = linger_ms
        self._bootstrap = bootstrap
        self._auth = auth or KafkaAuth()
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect (raises aiokafka's ``KafkaError`` when no broker answers)."""
        # aiokafka binds to the running loop, so the client is created here, not in __init__.
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=self.linger_ms,
            request_timeout_ms=int(self.timeout * 1000),
            **aiokafka_kwargs(self._auth),
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def enqueue(self, topic: str, key: bytes, value: bytes,
                      headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        """Hand one record to the client; return the future of the broker's acknowledgement
        (its result: RecordMetadata). Waiting for metadata or buffer space is bounded by the
        client's own request timeout (``timeout``), so a record is either handed over (and its
        future will settle) or not at all: callers must not cancel this coroutine half-way."""
        if self._producer is None:
            raise ProduceFailed("producer not started")
        try:
            fut: asyncio.Future[Any] = await self._producer.send(topic, value=value, key=key, headers=headers or [])
        except KafkaError as exc:
            raise ProduceFailed(f"{topic}: {type(exc).__name__}") from exc
        return fut

    async def send_batch(self, records: Sequence[Prepared], timeout: float | None = None) -> None:
        """Write ``records`` and wait for every acknowledgement (``ProduceFailed`` otherwise): their
        data keys' key-topic records first (acknowledged before any event is handed over, so a
        reader never meets an event whose key is not yet on Kafka), then the records in order."""
        keys, events = split_keys(records)
        for phase in (keys, events):
            futures = [await self.enqueue(r.topic, r.key, r.value, r.headers) for r in phase]
            if not futures:
                continue
            done, pending = await asyncio.wait(futures, timeout=timeout or self.timeout * 3)
            failed = [f for f in done if f.exception() is not None]
            if pending or failed:
                reasons = sorted({type(f.exception()).__name__ for f in failed})
                raise ProduceFailed(f"Kafka did not acknowledge {len(pending) + len(failed)} of {len(phase)} records"
                                    + (f" ({', '.join(reasons)})" if reasons else " in time"))
            if phase is keys:
                confirm_keys(keys)

    async def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        """Write one record and wait for the broker's acknowledgement."""
        if self._producer is None:
            raise ProduceFailed("producer not started")
        try:
            fut = await asyncio.wait_for(
                self._producer.send(topic, value=value, key=key, headers=headers or []), self.timeout
            )
            await asyncio.wait_for(fut, self.timeout)
        except (TimeoutError, KafkaError) as exc:
            raise ProduceFailed(f"{topic}: {type(exc).__name__}") from exc
