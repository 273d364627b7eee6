"""Faust settings shared by the worker and its benchmark baseline (measured, see README).

Profiling a minimal forwarder and the worker (py-spy) showed costs our configuration removes:
* one produce request per message: Faust's producer lingers 0 ms by default, so every
  ``send`` became its own request (socket writes were the top self-time) -> linger 10 ms and
  larger batches (``linger_ms``, the worker's ``TECHNE_WORKER_PRODUCER_LINGER_MS``: 50 ms cut the
  broker's CPU per event by about half and pushed the e2e p99 from <= 0.5 s to <= 1 s; README);
* ``logger.debug(...)`` calls in Faust's send path building LogRecords although nothing
  at DEBUG is emitted (the faust/mode/aiokafka loggers inherit DEBUG from the worker's setup)
  -> those loggers are set to the worker's level explicitly;
* fetches of 500 records -> larger polls;
* pure-Python murmur2 hashing of every record key -> hashes cached (:mod:`streams.partitioner`).

lz4 compression of produce batches was tried and measured slower (it costs the worker's one
thread more than it saves on the loopback socket), so batches go uncompressed.
"""

from __future__ import annotations

import logging
from typing import Any

from streams.partitioner import CachedPartitioner

QUIET_LOGGERS = ("faust", "mode", "aiokafka", "kafka")


def faust_settings(bootstrap: str, replication: int = 1, linger_ms: int = 10) -> dict[str, Any]:
    """``replication``: of the topics Faust creates (table changelogs, the assignor's topic);
    ``linger_ms``: how long the producer gathers records into one produce request."""
    return {
        "broker": f"kafka://{bootstrap}",
        "store": "memory://",
        "topic_replication_factor": replication,
        "producer_acks": -1,
        "producer_linger": linger_ms / 1000,
        "producer_partitioner": CachedPartitioner(),
        "producer_max_batch_size": 256 * 1024,
        "broker_max_poll_records": 2000,
        "stream_buffer_maxsize": 8192,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": False,
    }


def quiet_logging(level: int = logging.WARNING) -> None:
    """Set library loggers to ``level`` so disabled debug calls cost nothing."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level)
