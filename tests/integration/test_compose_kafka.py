"""The compose stack's Kafka configuration, run for real without Docker.

docker-compose.yml's ``kafka`` environment and ``deploy/kafka/entrypoint.sh`` are executed as the
apache/kafka image would, against the same Kafka version from the local jars: two small shims
stand in for the image's ``kafka-storage.sh`` and for its start script (which turns ``KAFKA_*``
variables into ``server.properties``). The broker must come up with the JAAS file the entrypoint
wrote and the SCRAM credentials it formatted, admit techne-admin, refuse everyone else, and
answer the compose healthcheck's command with its ``--command-config``. The entrypoint also loads
the Prometheus JMX exporter agent (fetched with Maven, the coordinates of the compose file's
``kafka-jmx-agent`` service) with ``deploy/kafka/jmx.yml``: the broker must export every metric
the JMX alerts of ``deploy/prometheus/kafka.yml`` use.
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

import httpx
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from core.kafka_auth import KafkaAuth, aiokafka_kwargs
from techne.local import LOG4J, fetch_jars, free_port, java_bin
from techne.local import fetch_jmx_agent as techne_fetch_jmx_agent
from tests.support.metrics import metric_names

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


Compose = dict[str, dict[str, object]]


def _compose_services() -> Compose:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"])


def fetch_jmx_agent(services: Compose) -> Path:
    """The agent jar of the compose file's ``kafka-jmx-agent`` service, fetched the same way (mvn)."""
    command = [str(a) for a in services["kafka-jmx-agent"]["command"]]  # type: ignore[attr-defined]
    (artifact,) = [a.split("=", 1)[1] for a in command if a.startswith("-Dartifact=")]
    return techne_fetch_jmx_agent(artifact)


def _local_agent(services: Compose, jar: Path, port: int) -> str:
    """Compose's TECHNE_KAFKA_JMX_AGENT (jar=port:rules), its container paths moved to this machine."""
    kafka = services["kafka"]
    value = str(kafka["environment"]["TECHNE_KAFKA_JMX_AGENT"])  # type: ignore[index]
    container_jar, rest = value.split("=", 1)
    _, rules = rest.split(":", 1)
    mounts = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"] if v.startswith("./")}  # type: ignore[attr-defined]
    assert Path(container_jar).name == jar.name
    return f"{jar}={port}:{ROOT / mounts[rules]}"


async def _admin_answers(bootstrap: str, auth: KafkaAuth) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **aiokafka_kwargs(auth))
    try:
        await admin.start()
        return list(await admin.list_topics())
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def compose_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KafkaAuth, Path, str]]:
    libs = fetch_jars()
    services = _compose_services()
    jmx_port = free_port()
    agent = _local_agent(services, fetch_jmx_agent(services), jmx_port)
    work = tmp_path_factory.mktemp("compose-kafka")
    home, secrets_dir, data = work / "kafka-home", work / "secrets", work / "data"
    (home / "bin").mkdir(parents=True)
    values = {"java": java_bin(), "libs": libs, "log4j": LOG4J}
    (home / "bin" / "kafka-storage.sh").write_text(STORAGE_SHIM.format(**values))
    run = work / "run"
    run.write_text(RUN_SHIM.format(**values))
    for script in (home / "bin" / "kafka-storage.sh", run):
        script.chmod(0o755)

    env = services["kafka"]["environment"]  # type: ignore[assignment]
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
            "TECHNE_KAFKA_JMX_AGENT": agent, "PATH": os.environ["PATH"]}
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
        yield bootstrap, admin, secrets_dir, f"http://127.0.0.1:{jmx_port}/metrics"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_the_bus_user_gets_in_with_scram(compose_kafka: tuple[str, KafkaAuth, Path, str]) -> None:
    bootstrap, admin, secrets_dir, _ = compose_kafka
    assert isinstance(asyncio.run(_admin_answers(bootstrap, admin)), list)
    for path in secrets_dir.iterdir():  # the JAAS and client files hold passwords: owner only
        assert path.stat().st_mode & 0o077 == 0, path


def test_nobody_else_gets_in(compose_kafka: tuple[str, KafkaAuth, Path, str]) -> None:
    bootstrap, _, _, _ = compose_kafka
    wrong = KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", "techne-admin", SecretStr("wrong-password"))
    for who in (wrong, KafkaAuth()):
        with pytest.raises((KafkaError, OSError)):
            asyncio.run(_admin_answers(bootstrap, who))


def test_the_compose_healthcheck_command_answers(compose_kafka: tuple[str, KafkaAuth, Path, str]) -> None:
    bootstrap, _, secrets_dir, _ = compose_kafka
    result = subprocess.run(
        [java_bin(), f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{fetch_jars()}/*",
         "org.apache.kafka.tools.BrokerApiVersionsCommand", "--bootstrap-server", bootstrap,
         "--command-config", str(secrets_dir / "admin.properties")],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "Produce(0)" in result.stdout, result.stdout + result.stderr


def test_the_broker_exports_the_jmx_metrics_the_alerts_use(compose_kafka: tuple[str, KafkaAuth, Path, str]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import NewTopic

    bootstrap, admin, _, url = compose_kafka

    async def traffic() -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_kwargs(admin))
        await client.start()
        try:
            await client.create_topics([NewTopic("raw.jmx-check", 1, 1)])
        finally:
            await client.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **aiokafka_kwargs(admin))
        await producer.start()
        try:
            for _ in range(20):
                await producer.send_and_wait("raw.jmx-check", b"x" * 100)
        finally:
            await producer.stop()

    asyncio.run(traffic())
    text = httpx.get(url, timeout=30).text
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "kafka.yml").read_text(encoding="utf-8"))
    (group,) = [g for g in rules["groups"] if g["name"] == "kafka-broker-jmx"]
    used = set().union(*(metric_names(str(r["expr"])) for r in group["rules"])) - {"up"}
    assert used and not used - exported, f"not exported by the broker: {sorted(used - exported)}"
    sizes = [line for line in text.splitlines() if line.startswith("kafka_log_size_bytes{") and "raw.jmx-check" in line]
    assert sizes and float(sizes[0].rsplit(" ", 1)[1]) > 2000, sizes  # 20 records of 100 bytes on disk
    assert "kafka_controller_activecontrollercount 1.0" in text
