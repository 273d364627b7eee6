"""`techne backup ledger|restore-ledger|restore` end in one line, never a client traceback: a Kafka
that cannot be reached (exit 1: retry later), a file that is not a backup (exit 1, as every
backup refusal of this command group)."""

from __future__ import annotations

import gzip
from pathlib import Path

from typer.testing import CliRunner

from techne.cli import app

NO_KAFKA = {"TECHNE_BOOTSTRAP": "127.0.0.1:1"}


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, list(args), env=NO_KAFKA)
    return result.exit_code, result.output, result.exception


def test_an_unreachable_kafka_is_one_line(tmp_path: Path) -> None:
    code, output, exc = run("backup", "ledger", str(tmp_path / "ledger.jsonl.gz"))
    assert code == 1 and isinstance(exc, SystemExit), (output, exc)
    assert "cannot reach Kafka at 127.0.0.1:1" in output and "Traceback" not in output
    assert not (tmp_path / "ledger.jsonl.gz").exists()

    backup = tmp_path / "ok.jsonl.gz"
    with gzip.open(backup, "wt") as f:
        f.write('{"topic": "t", "partitions": 1, "records": 0, "sha256": "x"}\n')
    code, output, exc = run("backup", "restore-ledger", str(backup))
    assert code == 1 and isinstance(exc, SystemExit), (output, exc)
    assert "cannot reach Kafka at 127.0.0.1:1" in output


def test_a_file_that_is_not_a_backup_is_one_line(tmp_path: Path) -> None:
    empty, text, truncated = tmp_path / "empty.gz", tmp_path / "text.gz", tmp_path / "truncated.gz"
    with gzip.open(empty, "wt"):
        pass
    with gzip.open(text, "wt") as f:
        f.write("topic;partitions\nx;1\n")
    truncated.write_bytes(gzip.compress(b'{"topic": "t"}\n' * 100)[:40])
    for source in (empty, text, truncated):
        code, output, exc = run("backup", "restore-ledger", str(source))
        assert code == 1 and isinstance(exc, SystemExit), (source, output, exc)
        assert "not a ledger backup" in output and "Traceback" not in output, output

    store_backup = tmp_path / "stores"
    store_backup.mkdir()
    for manifest in ("not json", "[1, 2]"):
        (store_backup / "manifest.json").write_text(manifest)
        code, output, exc = run("backup", "restore", str(store_backup), "--data-dir", str(tmp_path / "target"))
        assert code == 1 and isinstance(exc, SystemExit), (manifest, output, exc)
        assert "not a manifest written by `techne backup create`" in output, output


def test_a_backup_of_a_missing_data_directory_is_refused_not_an_empty_backup(tmp_path: Path) -> None:
    """A wrong --data-dir (or TECHNE_DATA_DIR) wrote a backup of nothing and answered 'backup written', exit 0."""
    missing, out = tmp_path / "techne-typo", tmp_path / "backup"
    code, output, exc = run("backup", "create", str(out), "--data-dir", str(missing))
    assert code == 1 and isinstance(exc, SystemExit), (output, exc)
    assert f"data directory {missing} does not exist" in output and "backup written" not in output, output
    assert not out.exists() and not missing.exists()


def test_a_missing_backup_directory_is_named(tmp_path: Path) -> None:
    code, output, exc = run("backup", "restore", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "target"))
    assert code == 1 and isinstance(exc, SystemExit), (output, exc)
    assert "no backup in" in output and "Errno" not in output, output
    assert not (tmp_path / "target").exists()
