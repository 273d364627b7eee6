"""The loopback read server and the reader (sinks/read_server.py, sinks/reader.py) on a real
embedded store, in this process: a reader of one store never gets another store's rows through
a stale endpoint file (a sink killed without removing it, its port now another sink's), and a
request with a bad ``Content-Length`` is refused before anything is read."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.errors import StoreMissing
from core.settings import Settings
from sinks.chdb import ChdbStore
from sinks.read_server import ReadServer, endpoint_path, start_for_store
from sinks.reader import StoreRef, open_reader

TOKEN = "shared-read-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ReadServer]:
    """Store ``b`` (database ``db_b``, one row) served on loopback, as a running sink serves it."""
    store = ChdbStore(tmp_path / "b")
    store.command("CREATE DATABASE IF NOT EXISTS db_b")
    store.command("CREATE TABLE IF NOT EXISTS db_b.ticket_orders (who String) ENGINE = MergeTree ORDER BY who")
    store.command("INSERT INTO db_b.ticket_orders VALUES ('b-row')")
    server = start_for_store(tmp_path / "b", "db_b", token=TOKEN, max_rows=100, timeout_s=5)
    try:
        yield server
    finally:
        server.close()
        store.close()


def _stale_endpoint(store_dir: Path, port: int, pid: int, token: str | None = None) -> None:
    entry = {"host": "127.0.0.1", "port": port, "pid": pid, **({"token": token} if token else {})}
    endpoint_path(store_dir).write_text(json.dumps(entry))


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(done.stdout)


def test_a_stale_endpoint_on_another_stores_port_never_reads_that_store(served: ReadServer, tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "read_token": SecretStr(TOKEN)})
    ref = StoreRef("a", tmp_path / "a", "db_a")
    _stale_endpoint(ref.store_dir, served.port, os.getpid())  # the same token, a live pid: only the store differs
    with pytest.raises(StoreMissing), open_reader(settings, ref) as reader:
        leaked = reader.query("SELECT who FROM ticket_orders")
        pytest.fail(f"read another store through a stale endpoint: {leaked}")


def test_an_endpoint_of_a_dead_process_is_ignored(served: ReadServer, tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path})
    ref = StoreRef("a", tmp_path / "a", "db_a")
    _stale_endpoint(ref.store_dir, served.port, _dead_pid(), token="the-dead-sinks-token")
    with pytest.raises(StoreMissing), open_reader(settings, ref):  # not "read server answered 401"
        pass


def test_the_right_store_is_still_read_through_its_server(served: ReadServer, tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "read_token": SecretStr(TOKEN)})
    with open_reader(settings, StoreRef("b", tmp_path / "b", "db_b")) as reader:
        assert reader.query("SELECT who FROM ticket_orders") == [("b-row",)]


@pytest.mark.parametrize("length", ["-1", "abc"])
def test_a_bad_content_length_is_refused_400(served: ReadServer, length: str) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(f"POST /query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        answer = conn.recv(4096).decode()  # a negative length used to read until the client closed
    assert answer.startswith("HTTP/1.1 400"), answer


def test_kept_alive_clients_are_bounded() -> None:
    """A client per read server port ever seen would grow for ever in a long-running reader."""
    from sinks import reader

    first = reader._client("http://127.0.0.1:1", "t", 1.0)
    for port in range(2, reader.MAX_CLIENTS + 10):
        reader._client(f"http://127.0.0.1:{port}", "t", 1.0)
    assert len(reader._CLIENTS) <= reader.MAX_CLIENTS
    assert first.is_closed and ("http://127.0.0.1:1", "t", 1.0) not in reader._CLIENTS


def test_no_file_is_written_or_read_through_the_read_path(served: ReadServer, tmp_path: Path) -> None:
    """``readonly = 1`` does not stop the embedded engine's ``INTO OUTFILE`` (a write, done by the
    local client) nor its ``file()`` function (any file the sink's user can read: other stores,
    endpoint tokens, keys); both are refused as writes (403) before they run."""
    from core.errors import ReadRefused

    secret = tmp_path / "secret.txt"
    secret.write_text("not for readers")
    settings = Settings.model_validate({"data_dir": tmp_path, "read_token": SecretStr(TOKEN)})
    with open_reader(settings, StoreRef("b", tmp_path / "b", "db_b")) as reader:
        for sql in (f"SELECT who FROM ticket_orders INTO OUTFILE '{tmp_path / 'out.csv'}'",  # noqa: S608 (the attack is the test)
                    f"SELECT 1 INTO/**/OUTFILE '{tmp_path / 'out2.csv'}' FORMAT CSV",
                    f"SELECT file('{secret}')", f"SELECT `file`('{secret}') AS f"):
            with pytest.raises(ReadRefused):
                reader.query(sql)
        assert reader.query("SELECT who AS file FROM ticket_orders") == [("b-row",)]  # a column may be named so
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out2.csv").exists()


@pytest.mark.parametrize("params", [[1, 2], "x", {"v": {"nested": 1}}])
def test_malformed_params_are_a_400_not_a_dropped_connection(served: ReadServer, params: object) -> None:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=5) as client:
        answer = client.post("/query", json={"sql": "SELECT {v:String}", "params": params},
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400, answer.text
    assert "params" in answer.json()["error"]


def test_a_statement_too_long_for_the_read_server_is_refused_not_transient(served: ReadServer, tmp_path: Path) -> None:
    """Above the server's body cap (413) the same statement is refused again: exit 2 for
    ``techne query``, as the engine's own cap on a store read directly, not 'retry later'."""
    from core.errors import ReadRefused
    from sinks.read_server import MAX_BODY

    settings = Settings.model_validate({"data_dir": tmp_path, "read_token": SecretStr(TOKEN)})
    with open_reader(settings, StoreRef("b", tmp_path / "b", "db_b")) as reader:
        with pytest.raises(ReadRefused, match="bytes"):
            reader.query("SELECT count() FROM ticket_orders WHERE who != '" + "x" * MAX_BODY + "'")  # noqa: S608
        assert reader.query("SELECT who FROM ticket_orders") == [("b-row",)]
