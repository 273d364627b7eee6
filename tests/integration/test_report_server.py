"""`techne report sharing` reads the audit store the compose stack writes: the ClickHouse server.

In the stack the audit sink writes ``audit.decisions`` on the server (``TECHNE_CLICKHOUSE_URL``,
user ``techne``) through :class:`sinks.server.ServerStore`, and the DPO's report reads it through
:mod:`sinks.reader` (clickhouse-connect, ``readonly = 1``). There is no ClickHouse server on this
machine, so both sides run through clickhouse-connect's embedded-engine client
(``interface="chdb"``): the same client calls, SQL, parameters and settings as against the
server; only the transport differs. ``clickhouse_connect.get_client`` is the seam: the test
checks it receives the compose stack's URL, user, password, database and read-only settings.
With ``TECHNE_TEST_CLICKHOUSE_URL`` set, the writer and the report use that real server instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from typer.testing import CliRunner

from sinks import audit
from sinks.base import Batch
from sinks.migrate import ensure_table
from sinks.server import ServerStore, connect
from techne.cli import app

pytestmark = pytest.mark.integration
SERVER_URL = os.environ.get("TECHNE_TEST_CLICKHOUSE_URL", "")
STACK_URL = "http://clickhouse:8123"  # docker-compose.yml, TECHNE_CLICKHOUSE_URL of the sinks


def _line(event: str, outcome: str, partner: str | None, reason: str, purpose: str | None = "marketing",
          venue: str = "opera-lyon") -> dict[str, Any]:
    return {"event_id": event, "venue_id": venue, "event_type": "ticket.order_placed", "outcome": outcome,
            "reason": reason, "partner": partner, "purpose": purpose, "agreement_id": "dsa-x",
            "decided_at": "2026-03-01T10:00:00+00:00"}


RECORDS = [
    # one worker message per event, one line per decision (streams.processor.audit_record)
    [_line("e1", "shared", "reseau-danse", "granted"), _line("e1", "dropped", "observatoire", "no_record")],
    [_line("e2", "shared", "reseau-danse", "granted"), _line("e2", "shared", "observatoire", "granted")],
    [_line("e3", "dropped", "reseau-danse", "withdrawn")],
    [_line("e4", "shared", "reseau-danse", "granted", venue="chaillot")],  # another venue: not in the report
]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The audit store as the stack's audit sink writes it, and a record of how the report connects."""
    seen: dict[str, Any] = {}
    if SERVER_URL:
        writer = connect(SERVER_URL)
        url = SERVER_URL
    else:
        real = clickhouse_connect.get_client
        path = str(tmp_path / "clickhouse")
        writer = ServerStore(real(interface="chdb", path=path))
        url = STACK_URL

        def get_client(**kwargs: Any) -> Any:
            seen.update(kwargs)
            assert kwargs["dsn"] == STACK_URL
            # The server checks a request's settings together against the user's profile (readonly=1
            # among them is fine); the embedded client applies them one by one, so readonly goes last.
            settings = dict(kwargs["settings"])
            settings["readonly"] = settings.pop("readonly")
            return real(interface="chdb", path=path, database=kwargs["database"], settings=settings)

        monkeypatch.setattr(clickhouse_connect, "get_client", get_client)
    writer.command(f"DROP TABLE IF EXISTS {audit.SPEC.qualified} SYNC")
    ensure_table(writer, audit.SPEC)
    handler = audit.AuditHandler(writer, topic="techne.audit", batch_rows=1000, batch_seconds=1.0)
    batch: Batch[list[dict[str, Any]]] = Batch("techne.audit", 0, 1000, 1.0)
    for offset, record in enumerate(RECORDS):
        batch.add(offset, handler.decode("\n".join(json.dumps(line) for line in record).encode()), 0.0)
    assert handler.write_sync([batch])[0].inserted == 6
    writer.close()
    yield {"url": url, "seen": seen}


def test_report_sharing_reads_the_server_audit_store(server: dict[str, Any], tmp_path: Path) -> None:
    env = {"TECHNE_CLICKHOUSE_URL": server["url"], "TECHNE_CLICKHOUSE_USER": "techne",
           "TECHNE_CLICKHOUSE_PASSWORD": "stack-password", "TECHNE_DATA_DIR": str(tmp_path / "no-local-store")}
    result = CliRunner().invoke(app, ["report", "sharing", "--venue", "opera-lyon", "--lang", "en"], env=env)
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert "3 ticket.order_placed with reseau-danse for marketing (valid consent)" not in lines  # e4 is chaillot
    assert "2 ticket.order_placed with reseau-danse for marketing (valid consent)" in lines
    assert "1 ticket.order_placed with observatoire for marketing (valid consent)" in lines
    assert "1 ticket.order_placed with observatoire for marketing (no consent recorded)" in lines
    assert "1 ticket.order_placed with reseau-danse for marketing (consent withdrawn)" in lines
    assert not (tmp_path / "no-local-store").exists(), "the report must not open an embedded store"
    if not SERVER_URL:
        seen = server["seen"]
        assert (seen["username"], seen["password"], seen["database"]) == ("techne", "stack-password", "audit")
        assert seen["settings"]["readonly"] == 1
