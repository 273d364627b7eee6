"""Per-partner ClickHouse sinks: ``partner.<id>.ticketing`` -> the partner's ``ticket_orders`` table.

Modules: :mod:`sinks.ddl` (schema -> DDL and rows, pure), :mod:`sinks.base` (the ``Store``
interface, per-partition ``Batch``, idempotent ``write_batch``), :mod:`sinks.chdb` (embedded
store), :mod:`sinks.server` (ClickHouse server store), :mod:`sinks.consumer` (the Kafka loop),
:mod:`sinks.metrics` (Prometheus).

chDB caveat, for code and tests alike: chDB runs ONE embedded engine per process, bound to one
directory. While a ``ChdbStore`` (or a clickhouse-connect ``interface="chdb"`` client) is open,
opening a different directory in the same process raises ``StoreLocked``; close first, then
open the other path. A directory is also exclusive to one process (``StoreLocked`` names the
holder's PID). Hence one sink process per partner with the embedded store, and tests that
need several directories open them one after another, or in subprocesses.
"""
