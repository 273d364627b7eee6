"""Pure parts of the broker request counts of ``techne bench e2e`` (bench/broker_requests.py)."""

from pathlib import Path

import pytest
import yaml

from bench import broker_requests
from core.errors import LocalKafkaError


def _exposition(produce: float, fetch: float, raw_in: float, raw_entries: float, partner_in: float) -> str:
    """The JMX exporter agent's text output (text format 0.0.4: counters named ``..._total``)."""
    return f"""# HELP kafka_network_requests_total Attribute exposed for management
# TYPE kafka_network_requests_total counter
kafka_network_requests_total{{request="Produce",version="11"}} {produce - 2}
kafka_network_requests_total{{request="Produce",version="12"}} 2.0
kafka_network_requests_total{{request="Fetch",version="17"}} {fetch}
kafka_network_requests_total{{request="FetchConsumer",version="17"}} {fetch}
kafka_network_requests_total{{request="Metadata",version="12"}} 7.0
# HELP kafka_topic_messagesinpersec_total Attribute exposed for management
# TYPE kafka_topic_messagesinpersec_total counter
kafka_topic_messagesinpersec_total{{topic="raw.chaillot"}} {raw_in}
kafka_topic_messagesinpersec_total{{topic="partner.a.orders"}} {partner_in}
# HELP kafka_topic_totalproducerequestspersec_total Attribute exposed for management
# TYPE kafka_topic_totalproducerequestspersec_total counter
kafka_topic_totalproducerequestspersec_total{{topic="raw.chaillot"}} {raw_entries}
# HELP kafka_server_replicamanager_leadercount Attribute exposed for management
# TYPE kafka_server_replicamanager_leadercount gauge
kafka_server_replicamanager_leadercount 40.0
"""


def test_counters_sum_api_versions_and_keep_topics_apart() -> None:
    c = broker_requests.counters(_exposition(10, 30, 1000, 20, 2000))
    assert c["requests"] == {"Produce": 10.0, "Fetch": 30.0, "FetchConsumer": 30.0, "Metadata": 7.0}
    assert c["messages_in"] == {"raw.chaillot": 1000.0, "partner.a.orders": 2000.0}
    assert c["produce_partition_entries"] == {"raw.chaillot": 20.0}
    assert c["fetch_partition_entries"] == {}


def test_per_event_divides_the_window_and_drops_what_did_not_move() -> None:
    before = broker_requests.counters(_exposition(10, 30, 1000, 20, 2000))
    after = broker_requests.counters(_exposition(60, 230, 2000, 70, 4000))  # 1,000 events in the window
    r = broker_requests.per_event(before, after, 1000)
    # Metadata unchanged: dropped; FetchConsumer (the consumers' share of Fetch) not counted twice
    assert r["requests"] == {"total": 0.25, "Fetch": 0.2, "FetchConsumer": 0.2, "Produce": 0.05}
    assert r["messages_in"] == {"total": 3.0, "partner.a.orders": 2.0, "raw.chaillot": 1.0}
    assert r["produce_partition_entries"] == {"total": 0.05, "raw.chaillot": 0.05}
    lines = broker_requests.summary({f"broker_{k}_per_event": v for k, v in r.items()} | {"broker_requests_note": ""})
    assert "Produce 0.05, Fetch 0.2, total 0.25" in lines
    assert "records per appended batch: raw.chaillot 20.0" in lines  # 1 record per event / 0.05 entries


def test_without_the_agent_the_bench_says_why_and_runs_without_it(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    def offline() -> Path:
        raise LocalKafkaError("mvn failed fetching io.prometheus.jmx:jmx_prometheus_javaagent:1.0.1:\nno network")

    monkeypatch.setattr(broker_requests, "fetch_jmx_agent", offline)
    options, url, note = broker_requests.agent_options(tmp_path)
    assert (options, url) == ([], None) and note.startswith("JMX exporter agent unavailable: mvn failed")
    assert broker_requests.summary({"broker_requests_note": note}).endswith(f"not measured ({note})")


def test_the_agent_option_keeps_the_deployed_rules_and_adds_the_per_topic_one(monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Path) -> None:
    monkeypatch.setattr(broker_requests, "fetch_jmx_agent", lambda: tmp_path / "agent.jar")
    (option,), url, note = broker_requests.agent_options(tmp_path / "jmx")
    jar, rest = option.removeprefix("-javaagent:").split("=", 1)
    port, rules_file = rest.split(":", 1)
    assert jar == str(tmp_path / "agent.jar") and url == f"http://127.0.0.1:{port}/metrics" and not note
    rules = yaml.safe_load(Path(rules_file).read_text())
    deployed = yaml.safe_load(broker_requests.JMX_RULES.read_text())
    assert rules["rules"] == [*deployed["rules"], broker_requests.TOPIC_RULE]
    assert rules["includeObjectNames"] == deployed["includeObjectNames"]
