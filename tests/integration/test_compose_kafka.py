"""The compose stack's Kafka configuration, run for real without Docker.

docker-compose.yml's ``kafka`` environment and ``deploy/kafka/entrypoint.sh`` are executed as the
apache/kafka image would, against the same Kafka version from the local jars: two small shims
stand in for the image's ``kafka-storage.sh`` and for its start script (which turns ``KAFKA_*``
variables into ``server.properties``). The broker must come up with the JAAS file the entrypoint
wrote and the SCRAM credentials it formatted, admit techne-admin, refuse everyone else, and
answer the compose healthcheck's command with its ``--command-config``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from core.kafka_auth import KafkaAuth, aiokafka_kwargs
from techne.local import LOG4J, fetch_jars, free_port, java_bin

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

STORAGE_SHIM = """#!/usr/bin/env bash
exec "{java}" -cp "{libs}/*" -Dlog4j2.configurationFile={log4j} kafka.tools.StorageTool "$@"
"""
# what the image's /etc/kafka/docker/run does, minus the storage format the entrypoint already did
RUN_SHIM = """#!/usr/bin/env bash
set -euo pipefail
props="$TECHNE_KAFKA_SECRETS_DIR/server.properties"
env | grep '^KAFKA_' | grep -v -E '^KAFKA_(OPTS|HEAP_OPTS)=' | while IFS='=' read -r name value; do
  key=$(echo "${{name#KAFKA_}}" | tr '[:upper:]' '[:lower:]' | tr '_' '.')
  echo "$key=$value"
done > "$props"
exec "{java}" $KAFKA_OPTS -Xmx512m -Dlog4j2.configurationFile={log4j} -cp "{libs}/*" kafka.Kafka "$props"
"""


async def _admin_answers(bootstrap: str, auth: KafkaAuth) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **aiokafka_kwargs(auth))
    try:
        await admin.start()
        return list(await admin.list_topics())
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def compose_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KafkaAuth, Path]]:
    libs = fetch_jars()
    work = tmp_path_factory.mktemp("compose-kafka")
    home, secrets_dir, data = work / "kafka-home", work / "secrets", work / "data"
    (home / "bin").mkdir(parents=True)
    values = {"java": java_bin(), "libs": libs, "log4j": LOG4J}
    (home / "bin" / "kafka-storage.sh").write_text(STORAGE_SHIM.format(**values))
    run = work / "run"
    run.write_text(RUN_SHIM.format(**values))
    for script in (home / "bin" / "kafka-storage.sh", run):
        script.chmod(0o755)

    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]["kafka"]["environment"]
    internal, controller, host = free_port(), free_port(), free_port()
    env = {k: str(v) for k, v in env.items() if not k.startswith("TECHNE_") and k != "KAFKA_HEAP_OPTS"}
    env |= {  # the compose host names and ports, moved to this machine's loopback
        "KAFKA_LISTENERS": f"INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller},"
                           f"HOST://127.0.0.1:{host}",
        "KAFKA_ADVERTISED_LISTENERS": f"INTERNAL://127.0.0.1:{internal},HOST://127.0.0.1:{host}",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{controller}",
        "KAFKA_LOG_DIRS": str(data),
    }
    password = secrets.token_urlsafe(24)
    env |= {"TECHNE_KAFKA_PASSWORD": password, "TECHNE_KAFKA_CONTROLLER_PASSWORD": secrets.token_urlsafe(24),
            "TECHNE_KAFKA_HOME": str(home), "TECHNE_KAFKA_RUN": str(run), "TECHNE_KAFKA_SECRETS_DIR": str(secrets_dir),
            "PATH": os.environ["PATH"]}
    log = (work / "kafka.log").open("wb")
    proc = subprocess.Popen(["bash", str(ROOT / "deploy" / "kafka" / "entrypoint.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    bootstrap = f"127.0.0.1:{internal}"
    admin = KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", "techne-admin", SecretStr(password))
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (work / "kafka.log").read_text(errors="replace")[-4000:]
            try:
                asyncio.run(_admin_answers(bootstrap, admin))
                break
            except (KafkaError, OSError):
                assert time.monotonic() < deadline, (work / "kafka.log").read_text(errors="replace")[-4000:]
                time.sleep(0.5)
        yield bootstrap, admin, secrets_dir
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_the_bus_user_gets_in_with_scram(compose_kafka: tuple[str, KafkaAuth, Path]) -> None:
    bootstrap, admin, secrets_dir = compose_kafka
    assert isinstance(asyncio.run(_admin_answers(bootstrap, admin)), list)
    for path in secrets_dir.iterdir():  # the JAAS and client files hold passwords: owner only
        assert path.stat().st_mode & 0o077 == 0, path


def test_nobody_else_gets_in(compose_kafka: tuple[str, KafkaAuth, Path]) -> None:
    bootstrap, _, _ = compose_kafka
    wrong = KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", "techne-admin", SecretStr("wrong-password"))
    for who in (wrong, KafkaAuth()):
        with pytest.raises((KafkaError, OSError)):
            asyncio.run(_admin_answers(bootstrap, who))


def test_the_compose_healthcheck_command_answers(compose_kafka: tuple[str, KafkaAuth, Path]) -> None:
    bootstrap, _, secrets_dir = compose_kafka
    result = subprocess.run(
        [java_bin(), f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{fetch_jars()}/*",
         "org.apache.kafka.tools.BrokerApiVersionsCommand", "--bootstrap-server", bootstrap,
         "--command-config", str(secrets_dir / "admin.properties")],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "Produce(0)" in result.stdout, result.stdout + result.stderr
