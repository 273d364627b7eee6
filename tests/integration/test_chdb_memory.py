"""The embedded engine starts with the memory settings chosen in ``sinks/chdb.py``.

Run in a fresh interpreter: chDB starts one engine per process with the settings of the first
session, so another test module's store opened earlier in the pytest process must not decide.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from sinks.chdb import ENGINE_SETTINGS, connection_string

PROBE = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from sinks.chdb import ChdbStore
    with ChdbStore(Path(sys.argv[1])) as store:
        server = dict(store.query("SELECT name, value FROM system.server_settings"))
        session = dict(store.query("SELECT name, value FROM system.settings"))
        store.command("CREATE TABLE t (a UInt64) ENGINE = MergeTree ORDER BY a")
        store.command("INSERT INTO t SELECT number FROM numbers(100000)")
        rows = store.query("SELECT count() FROM t")[0][0]
    print(json.dumps({"server": server, "session": session, "rows": rows,
                      "dirs": sorted(os.listdir(sys.argv[1]))}))
""")


def test_engine_runs_with_every_chosen_setting_and_stores_in_the_directory(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = subprocess.run([sys.executable, "-c", PROBE, str(store)], capture_output=True, text=True,
                         timeout=120, check=True, cwd=Path(__file__).resolve().parents[2])
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for name, value in ENGINE_SETTINGS.items():
        actual = got["server"].get(name, got["session"].get(name))
        assert actual == str(value), (name, actual, value)
    assert int(got["server"]["mark_cache_size"]) <= 16 * 2**20  # not ClickHouse's 5 GiB server default
    assert got["rows"] == 100000
    assert "metadata" in got["dirs"] and list(tmp_path.iterdir()) == [store]  # the settings are not in the path


def test_connection_string_is_the_path_then_the_settings() -> None:
    assert connection_string(Path("/d/s"), {"max_threads": 1, "mark_cache_size": 5}) == \
        "/d/s?max_threads=1&mark_cache_size=5"
    assert connection_string(Path("/d/s"), {}) == "/d/s"
    assert connection_string(Path("/d/s")).startswith("/d/s?max_server_memory_usage=")
