"""Per-partner ClickHouse sinks, and the audit sink.

A partner sink (``techne sink --partner P``, one process per partner) consumes
``partner.<id>.ticketing`` into the partner's ``ticket_orders`` table, ``partner.<id>.campaign``
into ``email_clicks`` (when its agreements share e-mail clicks) and executes the erasure
commands of ``partner.<id>.erasure``; the audit sink (``techne sink --audit``) keeps
``techne.audit``. Modules, from the edge inwards:

- :mod:`sinks.runner` (process entry points, read helpers), :mod:`sinks.consumer` (wiring),
  :mod:`sinks.loop` (the generic batch -> write -> commit loop over topic handlers);
- handlers: :mod:`sinks.orders` (shared events of every kind, idempotent writes), :mod:`sinks.erasure`
  (erasure commands, tombstones), :mod:`sinks.audit` (audit log);
- pure logic: :mod:`sinks.tables` (tables from schema + agreements: projection, sort key,
  retention), :mod:`sinks.ddl` (DDL and rows from Avro), :mod:`sinks.framing` (the Avro fast
  path), :mod:`sinks.recent` (exact in-memory duplicate answers), :mod:`sinks.base` (store
  interface, batches, tokens), :mod:`sinks.records` (reference decoder, invalid-message hook);
- stores: :mod:`sinks.chdb` (embedded), :mod:`sinks.server` (clickhouse-connect), both behind
  :class:`sinks.base.Store`; :mod:`sinks.migrate` creates and evolves tables on either;
- :mod:`sinks.read_server` (each embedded sink serves read-only SQL on its store on loopback) and
  :mod:`sinks.reader` (the one read path of every reader: read server, directory or server);
- :mod:`sinks.dlq` (dead letters on ``dlq.sink``), :mod:`sinks.metrics`. Fault injection lives
  in the tests (``tests/support/faults.py``, through ``run_sink_process(wrap_store=...)``), the
  sink benchmark in :mod:`bench.sinks`.

chDB caveat, for code and tests alike: chDB runs ONE embedded engine per process, bound to one
directory. While a ``ChdbStore`` (or a clickhouse-connect ``interface="chdb"`` client) is open,
opening a different directory in the same process raises ``StoreLocked``; close first, then
open the other path. A directory is also exclusive to one process (``StoreLocked`` names the
holder's PID). Hence one sink process per partner with the embedded store, and tests that
need several directories open them one after another, or in subprocesses.
"""
