"""The one Kafka producer of the venue side.

Idempotent (``enable_idempotence=True``), ``acks=all``: :meth:`EventProducer.send` returns
only once the broker acknowledged the write on all in-sync replicas, or raises
:class:`ProduceFailed` after ``timeout`` seconds. Nothing here retries forever.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from techne.errors import TechneError
from techne.kafka_auth import KafkaAuth, aiokafka_kwargs


class ProduceFailed(TechneError):
    """Kafka did not acknowledge a write in time; the caller must not report success."""


class EventProducer:
    """Thin wrapper over :class:`AIOKafkaProducer` with the delivery settings we require."""

    def __init__(self, bootstrap: str, *, timeout: float = 10.0, client_id: str = "techne-gateway",
                 auth: KafkaAuth | None = None) -> None:
        self.timeout = timeout
        self._bootstrap = bootstrap
        self._auth = auth or KafkaAuth()
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the client is created here, not in __init__.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=int(self.timeout * 1000),
            **aiokafka_kwargs(self._auth),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

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
