"""The broker's own request and message counts for the benchmarks, read from the Prometheus JMX
exporter agent (``deploy/kafka/jmx.yml`` + one bench-only rule) loaded into the local broker.

:func:`agent_options` fetches the agent (Maven) and returns the broker's JVM option, or the reason
it cannot (the bench then prints everything else). :func:`counters` reads one scrape: requests
per API (``kafka_network_requests``, summed over API versions: what the network threads
handled), and per topic the messages in and the partition entries of produce and fetch requests
(``BrokerTopicMetrics``' ``Total*RequestsPerSec``, which Kafka marks once per partition of a
request, not once per request: messages in / produce entries = records per appended batch).
:func:`per_event` turns two scrapes into counts per event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.errors import LocalKafkaError
from techne.local import JMX_RULES, fetch_jmx_agent, free_port

TOPIC_RULE = {  # per-topic counts, bench only (deploy/kafka/jmx.yml exports the all-topics totals)
    "pattern": "kafka.server<type=BrokerTopicMetrics, name=(MessagesInPerSec|TotalProduceRequestsPerSec|"
               "TotalFetchRequestsPerSec), topic=(.+)><>Count",
    "name": "kafka_topic_$1", "type": "COUNTER", "labels": {"topic": "$2"}}
PER_TOPIC = {"messagesinpersec": "messages_in", "totalproducerequestspersec": "produce_partition_entries",
             "totalfetchrequestspersec": "fetch_partition_entries"}

SUBCATEGORIES = {"FetchConsumer", "FetchFollower", "AddPartitionsToTxnVerification"}
"""Request metrics Kafka keeps for a subset of another API's requests (a consumer's Fetch is
counted as Fetch and FetchConsumer): shown, left out of ``total``."""

Counters = dict[str, dict[str, float]]


def agent_options(directory: Path) -> tuple[list[str], str | None, str]:
    """(JVM options loading the agent, its metrics URL, "") or ([], None, why not)."""
    try:
        jar = fetch_jmx_agent()
    except (LocalKafkaError, OSError) as exc:
        return [], None, f"JMX exporter agent unavailable: {str(exc).splitlines()[0]}"
    rules = yaml.safe_load(JMX_RULES.read_text(encoding="utf-8"))
    rules["includeObjectNames"] = list(rules.get("includeObjectNames", []))
    rules["rules"] = [*rules["rules"], TOPIC_RULE]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "jmx-bench.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    port = free_port()
    return [f"-javaagent:{jar}={port}:{path}"], f"http://127.0.0.1:{port}/metrics", ""


def counters(text: str) -> Counters:
    """``{"requests": {api: count}, "messages_in"|"produce_partition_entries"|"fetch_partition_entries":
    {topic: count}}``
    from one exposition of the agent (counter samples only; API versions summed)."""
    out: Counters = {"requests": {}, **{v: {} for v in PER_TOPIC.values()}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:  # by sample name: the TYPE line's name differs between formats
            name = sample.name.removesuffix("_total")
            if name == "kafka_network_requests":
                api = sample.labels["request"]
                out["requests"][api] = out["requests"].get(api, 0.0) + sample.value
            elif name.startswith("kafka_topic_") and name[12:] in PER_TOPIC:
                out[PER_TOPIC[name[12:]]][sample.labels["topic"]] = sample.value
    return out


def scrape(url: str) -> Counters:
    return counters(httpx.get(url, timeout=30).text)


def per_event(before: Counters, after: Counters, events: int) -> dict[str, dict[str, float]]:
    """Counts between two scrapes divided by ``events`` (3 decimals), zero entries dropped; the
    ``requests`` section also gets ``total`` (every API, :data:`SUBCATEGORIES` left out), and each
    per-topic one its ``total``."""
    out: dict[str, dict[str, float]] = {}
    for section, now in after.items():
        then = before.get(section, {})
        deltas = {k: v - then.get(k, 0.0) for k, v in now.items()}
        deltas = {k: v for k, v in deltas.items() if v > 0}
        deltas["total"] = sum(v for k, v in deltas.items() if section != "requests" or k not in SUBCATEGORIES)
        out[section] = {k: round(v / events, 3) for k, v in sorted(deltas.items(), key=lambda kv: -kv[1])}
    return out


def summary(r: dict[str, Any]) -> str:
    """The bench's printed lines for the fields :mod:`bench.e2e` stores from :func:`per_event`."""
    if r.get("broker_requests_note"):
        return f"  broker requests: not measured ({r['broker_requests_note']})"
    requests, messages, produced, fetched = (r[f"broker_{k}_per_event"] for k in (
        "requests", "messages_in", "produce_partition_entries", "fetch_partition_entries"))

    def line(counts: dict[str, float]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items())

    batch = {t: round(n / produced[t], 1) for t, n in messages.items() if t != "total" and produced.get(t)}
    return "\n".join([
        f"  broker requests per event: Produce {requests.get('Produce', 0)}, Fetch {requests.get('Fetch', 0)}, "
        f"total {requests.get('total', 0)} ({line({k: v for k, v in requests.items() if k != 'total'})})",
        f"  records (messages in) per event: {line(messages)}",
        f"  produce partition entries per event: {line(produced)}; records per appended batch: {line(batch)}",
        f"  fetch partition entries per event: {line(fetched)}"])
