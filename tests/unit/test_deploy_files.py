"""The compose stack and its monitoring files stay consistent with the code and the agreements.

Pure file checks (PyYAML, ElementTree); ``docker compose config -q`` also runs when a Docker
CLI with the compose plugin (or a standalone ``docker-compose``) is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import DEFAULT_VENUES
from core.venues import load_venues
from sinks.ddl import database_name
from tests.support.metrics import (
    PROMETHEUS_BUILTIN_METRICS,
    ROOT,
    _declared_metrics,
    metric_names,
)

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

BUS_SERVICES = ("gateway", "worker")
REQUIRED_SERVICES = {"kafka", "clickhouse", "gateway", "worker", "lag-exporter", "prometheus", "grafana", "registry",
                     "caddy", "alertmanager", "kafka-exporter", "console"}
# Which services may receive each secret (and nothing else may).
SECRET_SCOPES = {
    "TECHNE_SUBJECT_KEY": {"gateway", "console"},
    "TECHNE_VENUE_SECRETS": {"gateway"},
    "TECHNE_PSEUDONYM_KEYS": {"worker"},
    "TECHNE_CLICKHOUSE_PASSWORD": {"clickhouse", "sink-*", "console"},
    "TECHNE_KAFKA_PASSWORD": {"kafka", "gateway", "worker", "sink-*", "lag-exporter", "kafka-exporter", "console"},
    "TECHNE_CONSOLE_SECRET": {"console"},
    "TECHNE_DATAKEY_MASTER_KEYS": {"gateway", "worker", "console"},
    "TECHNE_KAFKA_CONTROLLER_PASSWORD": {"kafka"},
    "TECHNE_GRAFANA_CLICKHOUSE_PASSWORD": {"clickhouse", "grafana"},
}
# Services that keep state, and the container path their named volume must cover.
STATEFUL = {
    "kafka": "/var/lib/kafka/data", "clickhouse": "/var/lib/clickhouse", "gateway": "/var/lib/techne",
    "worker": "/var/lib/techne", "console": "/var/lib/techne", "prometheus": "/prometheus",
    "alertmanager": "/alertmanager", "grafana": "/var/lib/grafana", "caddy": "/data",
}
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
MAIN_ALERTS = {"TechneDeadLettersGrowing", "TechneVenueSilent", "TechneConsumerLagGrowing", "TechneErasureBacklog",
               "TechneGatewayHigh5xxRate", "KafkaUnderReplicatedPartitions", "KafkaOfflinePartitions"}
SEVERITIES = {"critical", "warning", "info"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _partners() -> list[str]:
    return sorted({_yaml(p)["partner"] for p in (ROOT / "deploy" / "agreements").glob("*.yaml")})


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = _yaml(COMPOSE)
    assert isinstance(compose.get("services"), dict)
    return compose["services"]


def _sink_services() -> list[str]:
    """One sink per partner and one per venue's own store."""
    return [f"sink-{p}" for p in _partners()] + [f"sink-venue-{v}" for v in sorted(load_venues(DEFAULT_VENUES))]


def _command(service: dict[str, Any]) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


# --- docker-compose.yml ------------------------------------------------------------------


def test_required_services_exist_with_one_sink_per_partner(services: dict[str, dict[str, Any]]) -> None:
    assert _partners() == ["observatoire", "reseau-danse"]
    missing = (REQUIRED_SERVICES | set(_sink_services())) - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_bus_services_run_the_techne_cli(services: dict[str, dict[str, Any]]) -> None:
    assert _command(services["gateway"]).startswith("techne gateway")
    assert "--host 0.0.0.0" in _command(services["gateway"])
    assert _command(services["worker"]).startswith("techne worker")
    for partner in _partners():
        assert _command(services[f"sink-{partner}"]) == f"techne sink --partner {partner}"
    for venue in load_venues(DEFAULT_VENUES):
        assert _command(services[f"sink-venue-{venue}"]) == f"techne sink --venue {venue}"
    for name in (*BUS_SERVICES, *_sink_services()):
        assert "build" in services[name], f"{name} must be built from the repository's Dockerfile"


def test_bus_services_wait_for_a_healthy_kafka_and_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in (*BUS_SERVICES, *_sink_services()):
        service = services[name]
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("kafka", {}).get("condition") == "service_healthy", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in _sink_services():
        assert services[name]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
        assert services[name]["environment"]["TECHNE_CLICKHOUSE_URL"] == "http://clickhouse:8123"
    for name in ("kafka", "clickhouse"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_images_are_the_official_ones(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_no_literal_secrets_in_compose(services: dict[str, dict[str, Any]]) -> None:
    assert "whsec_" not in COMPOSE.read_text(encoding="utf-8")
    for name, service in services.items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form of environment"
        for var, scope in SECRET_SCOPES.items():
            if var not in env:
                continue
            allowed = name in scope or (name.startswith("sink-") and "sink-*" in scope)
            assert allowed, f"{var} must not be given to {name}"
            value = env[var]
            assert value is None or str(value).startswith("${"), f"{name}: {var} must come from the environment"


def test_bind_mounted_deploy_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def _compose_cli() -> list[str] | None:
    """``docker compose`` if the plugin answers, else a standalone ``docker-compose``, else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_the_local_broker_loads_the_jmx_agent_version_compose_deploys(services: dict[str, dict[str, Any]]) -> None:
    from techne.local import JMX_AGENT_ARTIFACT  # what the benches load into the local broker

    assert f"-Dartifact={JMX_AGENT_ARTIFACT}" in services["kafka-jmx-agent"]["command"]


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        # `make test` builds the plugin (deploy/local/compose-plugin.sh): in CI it must be there
        assert not os.environ.get("CI"), "no docker compose CLI in CI: deploy/local/compose-plugin.sh failed"
        return  # a developer machine without it: the YAML checks above are what we can verify
    result = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_env_example_documents_every_setting_without_real_secrets() -> None:
    from core.settings import Settings

    text = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?(TECHNE_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    expected = {f"TECHNE_{name.upper()}" for name in Settings.model_fields}
    assert not expected - documented, f"undocumented settings: {sorted(expected - documented)}"
    for var in SECRET_SCOPES:
        (value,) = re.findall(rf"^{var}=(.*)$", text, flags=re.MULTILINE)
        assert value in {"", "'{}'"}, f"{var} must stay empty in the example"


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_runs_as_non_root_without_secrets() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "python:3.11-slim" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^EXPOSE\s+.*8080", text, flags=re.MULTILINE)
    for var in SECRET_SCOPES:
        assert var not in text, f"{var} must not be set in the image"
    assert "whsec_" not in text


# --- Prometheus --------------------------------------------------------------------------------


def test_prometheus_sends_alerts_to_the_alertmanager_service(services: dict[str, dict[str, Any]]) -> None:
    (manager,) = _yaml(PROMETHEUS)["alerting"]["alertmanagers"]
    (target,) = manager["static_configs"][0]["targets"]
    assert target == "alertmanager:9093" and "alertmanager" in services
    mounts = services["alertmanager"]["volumes"]
    assert "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in mounts


def _amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        assert not os.environ.get("CI"), "amtool missing in CI: deploy/local/prereqs.sh installs it"
        pytest.skip("amtool missing: deploy/local/prereqs.sh installs Debian's prometheus-alertmanager (as root)")
    return found


def test_alertmanager_config_has_one_receiver_and_passes_amtool(tmp_path: Path) -> None:
    path = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    config = _yaml(path)
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url_file"] == "/run/secrets/alert_webhook_url"  # the URL (a token) is a compose secret
    text = path.read_text(encoding="utf-8")
    version = subprocess.run([_amtool(), "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"version (\d+)\.(\d+)", version.stdout + version.stderr)
    assert found
    if (int(found.group(1)), int(found.group(2))) < (0, 26):  # Debian's 0.25 predates url_file (compose: 0.28)
        text = text.replace("url_file: /run/secrets/alert_webhook_url", "url: http://receiver.invalid/hook")
    checked = tmp_path / "alertmanager.yml"
    checked.write_text(text, encoding="utf-8")
    result = subprocess.run([_amtool(), "check-config", str(checked)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_caddy_publishes_a_port_beyond_localhost(services: dict[str, dict[str, Any]]) -> None:
    public = {}
    for name, service in services.items():
        for port in service.get("ports") or []:
            if not str(port).startswith("127.0.0.1:"):
                public.setdefault(name, []).append(str(port))
    assert public == {"caddy": ["443:443"]}, public


def test_stateful_services_keep_their_state_in_named_volumes(services: dict[str, dict[str, Any]]) -> None:
    declared = set(_yaml(COMPOSE)["volumes"])
    readme = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    for name, target in STATEFUL.items():
        named = [v.split(":") for v in services[name].get("volumes") or [] if not v.startswith(("./", "/"))]
        assert any(t == target for _, t, *_ in named), f"{name}: no named volume at {target}"
        for volume, *_ in named:
            assert volume in declared, volume
    for volume in declared:
        assert f"`{volume}`" in readme, f"deploy/README.md does not say what {volume} holds"


def test_caddyfile_hides_metrics_and_docs_and_proxies_the_public_services() -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        assert not os.environ.get("CI"), "caddy missing in CI: deploy/local/prereqs.sh installs it"
        pytest.skip("caddy missing: deploy/local/prereqs.sh installs Debian's caddy (as root)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "TECHNE_PUBLIC_HOST": "bus.example.org",
           "TECHNE_REGISTRY_HOST": "registry.example.org", "TECHNE_TLS": "ops@example.org"}
    caddyfile = ROOT / "deploy" / "caddy" / "Caddyfile"
    result = subprocess.run([caddy, "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    (server,) = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]
    text = json.dumps(server)
    for path in ("/metrics", "/metrics/*", "/docs", "/docs/*"):
        assert f'"{path}"' in text
    assert '"gateway:8080"' in text and '"registry:8081"' in text and '"console:8090"' in text
    (policy,) = config["apps"]["tls"]["automation"]["policies"]
    assert policy["issuers"][0]["email"] == "ops@example.org"  # ACME with the operator's address


def test_grafana_clickhouse_datasource_is_the_one_the_insights_dashboard_uses(
        services: dict[str, dict[str, Any]]) -> None:
    refs: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict):
                refs.add((source["type"], source["uid"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "insights.json").read_text(encoding="utf-8")))
    assert refs, "the insights dashboard names its datasource"
    provisioning = _yaml(ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "clickhouse.yml")
    (source,) = provisioning["datasources"]
    assert refs == {(source["type"], source["uid"])}
    env = services["grafana"]["environment"]
    assert source["type"] in env["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    assert source["jsonData"]["host"] == "clickhouse" and source["jsonData"]["username"] == "grafana"
    assert source["secureJsonData"]["password"] == "$TECHNE_GRAFANA_CLICKHOUSE_PASSWORD"
    user = ET.parse(ROOT / "deploy" / "clickhouse" / "users.d" / "grafana.xml").getroot()  # noqa: S314
    assert user.findtext("profiles/grafana_readonly/readonly") == "2"
    grants = [q.text or "" for q in user.findall("users/grafana/grants/query")]
    assert sorted(grants) == sorted(f"GRANT SELECT ON {database_name(p)}.*" for p in _partners())
    mounts = services["clickhouse"]["volumes"]
    assert "./deploy/clickhouse/users.d/grafana.xml:/etc/clickhouse-server/users.d/grafana.xml:ro" in mounts


def test_registry_and_kafka_exporter_run_in_the_stack(services: dict[str, dict[str, Any]]) -> None:
    assert _command(services["registry"]).startswith("techne registry --host 0.0.0.0")
    assert "build" in services["registry"]
    exporter = services["kafka-exporter"]
    assert exporter["image"].startswith("danielqsj/kafka-exporter:")
    assert "--sasl.enabled" in _command(exporter) and "$$TECHNE_KAFKA_PASSWORD" in _command(exporter)
    jobs = {job["job_name"]: job for job in _yaml(PROMETHEUS)["scrape_configs"]}
    assert jobs["kafka"]["static_configs"][0]["targets"] == ["kafka-exporter:9308"]


def test_prometheus_scrapes_every_bus_service_and_loads_the_alerts(services: dict[str, dict[str, Any]]) -> None:
    config = _yaml(PROMETHEUS)
    assert any(Path(f).name == "alerts.yml" for f in config["rule_files"])
    targets: set[str] = set()
    for job in config["scrape_configs"]:
        assert job["job_name"]
        for static in job["static_configs"]:
            targets.update(t.split(":")[0] for t in static["targets"])
    targets.discard("localhost")
    assert targets <= set(services), f"scrape targets that are not services: {targets - set(services)}"
    assert {*BUS_SERVICES, *_sink_services()} <= targets








def test_metric_name_extraction() -> None:
    expr = ('sum by (partner) (rate(techne_routed_total{status=~"5.."}[5m])) > 0 '
            "unless on (partner) histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m] offset 1d)))")
    assert metric_names(expr) == {"techne_routed_total", "x_bucket"}


def _rules() -> list[dict[str, Any]]:
    groups = _yaml(ALERTS)["groups"]
    assert groups
    rules = []
    for group in groups:
        assert group["name"] and group["rules"], group
        rules.extend(group["rules"])
    return rules


def test_every_alert_rule_is_complete() -> None:
    names = [rule.get("alert") for rule in _rules()]
    assert all(names) and len(names) == len(set(names)), names
    for rule in _rules():
        assert str(rule.get("expr", "")).strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smhd]", str(rule.get("for", ""))), f"{rule['alert']}: `for` missing"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        assert str(rule.get("annotations", {}).get("summary", "")).strip(), rule["alert"]


def test_alerts_only_use_declared_metrics() -> None:
    declared = _declared_metrics()
    assert "techne_gateway_requests_total" in declared and "techne_sink_insert_seconds_bucket" in declared
    for rule in _rules():
        unknown = metric_names(rule["expr"]) - declared - PROMETHEUS_BUILTIN_METRICS
        assert not unknown, f"{rule['alert']} uses undeclared metrics {sorted(unknown)}"


def test_alerts_cover_the_failure_modes_ops_watch() -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in _rules()))
    for metric in ("techne_gateway_requests_total", "techne_dlq_total", "techne_consent_dropped_total",
                   "techne_sink_insert_errors_total", "techne_stream_events_total", "techne_sink_rows_inserted_total"):
        assert metric in used, f"no alert watches {metric}"


# --- Grafana and ClickHouse ---------------------------------------------------------------------


def test_grafana_datasource_points_at_the_compose_prometheus() -> None:
    provisioning = _yaml(ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = provisioning["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"


def test_clickhouse_bus_user_has_an_env_password_and_one_grant_per_partner() -> None:
    users_file = ROOT / "deploy" / "clickhouse" / "users.d" / "techne.xml"
    user = ET.parse(users_file).getroot().find("users/techne")  # noqa: S314 -- a file of this repository
    assert user is not None
    password = user.find("password")
    assert password is not None and password.get("from_env") and not (password.text or "").strip()
    grants = [q.text or "" for q in user.findall("grants/query")]
    for partner in _partners():
        assert any(g.rstrip().endswith(f" ON {database_name(partner)}.*") for g in grants), partner
    for venue in load_venues(DEFAULT_VENUES):  # each venue's own store
        assert any(g.rstrip().endswith(f" ON venue_{database_name(venue)}.*") for g in grants), venue
    assert all("CREATE VIEW" in g for g in grants if " ON audit." not in g), "sinks (re)create ticket_orders_current"
    assert not any(" ON *.*" in g for g in grants), "the bus user is limited to the partner databases"


# --- Kafka with SASL and ACLs -------------------------------------------------------------------


def test_kafka_authenticates_and_denies_by_default(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = kafka["environment"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no listener without authentication"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:techne-admin;User:controller"
    assert "/etc/techne/kafka-entrypoint.sh" in _command(kafka)
    assert "--command-config" in " ".join(kafka["healthcheck"]["test"])
    for name in (*BUS_SERVICES, *_sink_services(), "lag-exporter"):
        service_env = services[name]["environment"]
        assert service_env["TECHNE_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert service_env["TECHNE_KAFKA_USERNAME"] == "techne-admin", name


def test_kafka_entrypoint_is_valid_bash_and_needs_both_passwords() -> None:
    script = ROOT / "deploy" / "kafka" / "entrypoint.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False,
                            env={"PATH": "/usr/bin:/bin", "TECHNE_KAFKA_PASSWORD": ""})
    assert result.returncode != 0 and "TECHNE_KAFKA_PASSWORD is empty" in result.stderr
    text = script.read_text(encoding="utf-8")
    assert "--add-scram" in text and "/etc/kafka/docker/run" in text


# --- Prometheus rules with promtool, lag exporter, Grafana provisioning ---------------------------


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool missing: deploy/local/prereqs.sh installs Debian's prometheus package (as root)")
    return found


def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_prometheus_config_as_committed() -> None:
    result = subprocess.run([_promtool(), "check", "config", str(PROMETHEUS)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_yaml(PROMETHEUS)['rule_files'])} rule files found" in result.stdout


def test_promtool_accepts_the_kafka_rules() -> None:
    result = subprocess.run([_promtool(), "check", "rules", str(PROMETHEUS_DIR / "kafka.yml")], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_main_alerts_pass() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    tested = set()
    for path in tests:
        for case in _yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                # each tested alert fires somewhere in the file (not only "stays quiet")
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    assert tested >= MAIN_ALERTS, f"alerts without a firing unit test: {sorted(MAIN_ALERTS - tested)}"
    result = subprocess.run([_promtool(), "test", "rules", *map(str, tests)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_rule_files_are_relative_and_all_loaded() -> None:
    config = _yaml(PROMETHEUS)
    assert all(not Path(f).is_absolute() for f in config["rule_files"]), "relative paths: promtool checks the file"
    assert {PROMETHEUS_DIR / f for f in config["rule_files"]} == set(PROMETHEUS_DIR.glob("*.yml")) - {PROMETHEUS}


def test_alerts_cover_lag_and_silent_venues() -> None:
    names = {rule["alert"] for rule in _rules()}
    assert {"TechneConsumerLagGrowing", "TechneVenueSilent", "TechneDeadLetterRateHigh",
            "TechneSinkInsertErrors"} <= names


def test_lag_exporter_is_scraped(services: dict[str, dict[str, Any]]) -> None:
    assert _command(services["lag-exporter"]).startswith("techne lag --serve")
    jobs = {job["job_name"]: job for job in _yaml(PROMETHEUS)["scrape_configs"]}
    assert jobs["techne-lag"]["static_configs"][0]["targets"] == ["lag-exporter:9100"]


def test_grafana_provisions_the_generated_dashboards(services: dict[str, dict[str, Any]]) -> None:
    provider = _yaml(ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "techne.yml")
    (entry,) = provider["providers"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in services["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == entry["options"]["path"]
    assert sorted(p.name for p in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")) == [
        "insights.json", "techne-overview.json", "techne-partner.json"]  # insights.json: python -m insights.grafana
