"""Start and stop a real single-node Apache Kafka broker (KRaft) from the official jars.

The jars come from Maven Central through ``mvn`` and ``deploy/local/pom.xml`` into a cache
outside the repository (``$TECHNE_KAFKA_CACHE`` or ``~/.cache/techne``), once per version.
:class:`LocalKafka` formats a storage directory, writes ``server.properties``, starts
``kafka.Kafka`` on free loopback ports, waits until the broker answers a metadata request,
and stops it (SIGTERM, then SIGKILL after a grace period). Broker output goes to
``<dir>/broker.log``; a failed start raises :class:`LocalKafkaError` with its tail.

With ``sasl=True`` the broker authenticates and authorizes like the compose stack: its client
listener is ``SASL_PLAINTEXT`` with SCRAM-SHA-512, the KRaft ``StandardAuthorizer`` denies
whatever no ACL allows (``allow.everyone.if.no.acl.found=false``), and the bus's own user
``techne-admin`` is a super user whose SCRAM credentials are written into the metadata log at
format time (``kafka-storage format --add-scram``, given the salted password, never the
password). The controller listener uses SASL/PLAIN with a static user known only to the broker
(SCRAM cannot authenticate the controller quorum: its credentials live in the metadata the
quorum serves). Both passwords are random, kept in ``<dir>/credentials.json`` (mode 0600)
so a restart reuses them; :attr:`LocalKafka.admin_auth` hands the admin's to clients.

Kafka 4.4.0 is the default: aiokafka 0.14 and faust-streaming 0.15 were checked against it
(idempotent produce, consumer groups, offset commits, topic creation, Faust tables recovered
from their changelog after a restart).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from core.errors import LocalKafkaError as LocalKafkaError  # defined with the whole tree
from core.kafka_auth import KafkaAuth, aiokafka_kwargs
from core.settings import REPO_ROOT

KAFKA_VERSION = os.environ.get("TECHNE_KAFKA_VERSION", "4.4.0")
POM = REPO_ROOT / "deploy" / "local" / "pom.xml"
LOG4J = REPO_ROOT / "deploy" / "local" / "log4j2.properties"
ADMIN_USER = "techne-admin"
"""The bus's own Kafka principal (a super user) when the broker runs with SASL."""
CONTROLLER_USER = "controller"
SCRAM_ITERATIONS = 8192
JMX_AGENT_ARTIFACT = "io.prometheus.jmx:jmx_prometheus_javaagent:1.0.1"
"""The Prometheus JMX exporter agent (the compose file's ``kafka-jmx-agent`` service fetches the same)."""
JMX_RULES = REPO_ROOT / "deploy" / "kafka" / "jmx.yml"

def cache_dir() -> Path:
    return Path(os.environ.get("TECHNE_KAFKA_CACHE", Path.home() / ".cache" / "techne"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mvn(args: list[str], what: str, timeout: float = 900) -> None:
    """Run ``mvn -q -B <args>`` (quiet, batch); :class:`LocalKafkaError` naming ``what`` when Maven
    is missing or fails (offline, unknown artifact), with the end of its output."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(f"Maven (mvn) is required to fetch {what}; install it (apt-get install maven)")
    proc = subprocess.run([mvn, "-q", "-B", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise LocalKafkaError(f"mvn failed fetching {what}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def fetch_jars(version: str = KAFKA_VERSION) -> Path:
    """Return the directory holding the broker classpath, fetching it with mvn if needed."""
    libs = cache_dir() / f"kafka-{version}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if libs.exists():
        shutil.rmtree(libs)
    _mvn(["-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
          f"-DoutputDirectory={libs}", f"-Dkafka.version={version}"], f"Kafka {version}")
    marker.write_text(version)
    return libs


def fetch_jmx_agent(artifact: str = JMX_AGENT_ARTIFACT) -> Path:
    """The JMX exporter agent jar, fetched once with ``mvn dependency:copy`` into the cache
    (:class:`LocalKafkaError` when Maven cannot fetch it, e.g. offline)."""
    target = cache_dir() / ("jmx-" + artifact.replace(":", "-"))
    jar = target / "jmx_prometheus_javaagent.jar"
    if jar.exists():
        return jar
    _mvn(["dependency:copy", f"-Dartifact={artifact}", "-Dmdep.stripVersion=true", f"-DoutputDirectory={target}"],
         artifact)
    if not jar.exists():
        raise LocalKafkaError(f"mvn fetched {artifact} but {jar} is missing")
    return jar


def java_bin() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise LocalKafkaError("Java 17+ is required to run the local Kafka broker")
    return found


def _jaas(module: str, username: str, password: str, **users: str) -> str:
    extra = "".join(f' user_{name}="{secret}"' for name, secret in users.items())
    return f'{module} required username="{username}" password="{password}"{extra};'


def _security(credentials: dict[str, str] | None) -> list[str]:
    """Listener security lines: PLAINTEXT everywhere, or SASL + the deny-by-default authorizer."""
    if credentials is None:
        return ["listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT"]
    controller = credentials["controller"]
    return [
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
        + _jaas("org.apache.kafka.common.security.scram.ScramLoginModule", ADMIN_USER, credentials["admin"]),
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "listener.name.controller.plain.sasl.jaas.config="
        + _jaas("org.apache.kafka.common.security.plain.PlainLoginModule", CONTROLLER_USER, controller,
                **{CONTROLLER_USER: controller}),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN_USER};User:{CONTROLLER_USER}",
    ]


def _properties(data: Path, port: int, controller_port: int, partitions: int,
                credentials: dict[str, str] | None = None) -> str:
    client = "SASL_PLAINTEXT" if credentials is not None else "PLAINTEXT"
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners={client}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners={client}://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        *_security(credentials),
        f"log.dirs={data / 'logs'}",
        f"num.partitions={partitions}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=3",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "",
    ])


def scram_argument(username: str, password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """``--add-scram`` value for ``kafka-storage format``: the salted password (RFC 5802), not the password."""
    salt = secrets.token_bytes(24)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return (f"SCRAM-SHA-512=[name={username},salt=\"{b64(salt).decode()}\","
            f"saltedpassword=\"{b64(salted).decode()}\",iterations={iterations}]")


class LocalKafka:
    """One local broker rooted at ``directory`` (storage, config, log, pid file).

    ``sasl=True``: SCRAM-SHA-512 + ACLs, deny by default (see the module doc); clients use
    :attr:`admin_auth` (the super user) or credentials created through :mod:`techne.access`.
    ``java_options`` go to the broker's JVM only (not the storage formatter), e.g. a
    ``-javaagent:`` (the benchmarks load the JMX exporter to read the broker's request counts).
    """

    def __init__(self, directory: Path, *, version: str = KAFKA_VERSION, partitions: int = 3,
                 port: int | None = None, sasl: bool = False, java_options: Sequence[str] = ()) -> None:
        self.directory = directory.resolve()
        self.java_options = list(java_options)
        self.sasl = sasl
        self.credentials_file = self.directory / "credentials.json"
        self.version = version
        self.partitions = partitions
        self.state_file = self.directory / "broker.json"
        self.log_file = self.directory / "broker.log"
        self.port = port
        self.controller_port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise LocalKafkaError("broker not started")
        return f"127.0.0.1:{self.port}"

    @property
    def admin_auth(self) -> KafkaAuth:
        """Credentials of the bus's super user (PLAINTEXT, i.e. no credentials, without SASL)."""
        if not self.sasl:
            return KafkaAuth()
        return KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", ADMIN_USER, SecretStr(self._credentials()["admin"]))

    def _credentials(self) -> dict[str, str]:
        """The admin and controller passwords, generated once per storage directory (file mode 0600)."""
        if self.credentials_file.exists():
            return dict(json.loads(self.credentials_file.read_text()))
        self.directory.mkdir(parents=True, exist_ok=True)
        creds = {"admin": secrets.token_urlsafe(24), "controller": secrets.token_urlsafe(24)}
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f)
        return creds

    def _java(self, libs: Path, main: str, *args: str, options: Sequence[str] = ()) -> list[str]:
        return [java_bin(), "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true", *options,
                f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{libs}/*", main, *args]

    def start(self, timeout: float = 90.0) -> str:
        """Format (first time only), start the broker and wait until it answers; return bootstrap."""
        libs = fetch_jars(self.version)
        self.directory.mkdir(parents=True, exist_ok=True)
        props = self.directory / "server.properties"
        credentials = self._credentials() if self.sasl else None
        if self.port is None or not props.exists():
            self.port = self.port or free_port()
            self.controller_port = free_port()
            props.touch(mode=0o600)  # it holds the JAAS passwords when sasl: owner only
            props.chmod(0o600)
            props.write_text(_properties(self.directory, self.port, self.controller_port, self.partitions,
                                         credentials))
        if not (self.directory / "logs" / "meta.properties").exists():
            scram = ["--add-scram", scram_argument(ADMIN_USER, credentials["admin"])] if credentials else []
            fmt = subprocess.run(
                self._java(libs, "kafka.tools.StorageTool", "format", "-t", str(uuid.uuid4()), "-c", str(props),
                           *scram),
                capture_output=True, text=True, check=False)
            if fmt.returncode != 0:
                raise LocalKafkaError(f"formatting Kafka storage failed:\n{fmt.stdout[-2000:]}{fmt.stderr[-2000:]}")
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(self._java(libs, "kafka.Kafka", str(props), options=self.java_options),
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.state_file.write_text(json.dumps({"pid": self.proc.pid, "bootstrap": self.bootstrap}))
        self._wait_ready(timeout)
        return self.bootstrap

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LocalKafkaError(f"Kafka exited with {self.proc.returncode}; broker.log:\n{self.log_tail()}")
            if _answers(self.bootstrap, self.admin_auth):
                return
            time.sleep(0.3)
        self.stop()
        raise LocalKafkaError(f"Kafka did not answer within {timeout:.0f}s; broker.log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no broker.log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> None:
        """Stop cleanly (SIGTERM), killing after ``grace`` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.state_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker (fault injection); :meth:`start` brings it back on the same ports."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _answers(bootstrap: str, auth: KafkaAuth | None = None) -> bool:
    """True when the broker answers a metadata request and has an active controller."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000,
                                    **aiokafka_kwargs(auth or KafkaAuth()))
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            await admin.close()

    host, _, port = bootstrap.partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            pass
    except OSError:
        return False
    return asyncio.run(probe())


def stop_detached(directory: Path, grace: float = 30.0) -> bool:
    """Stop a broker started by ``techne local up`` (found through its pid file)."""
    state = directory.resolve() / "broker.json"
    if not state.exists():
        return False
    pid = int(json.loads(state.read_text())["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        state.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    state.unlink(missing_ok=True)
    return True
