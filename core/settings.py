"""Typed, frozen settings, validated once at the edge.

Values come from environment variables prefixed ``TECHNE_`` (JSON for dicts and lists), e.g.
``TECHNE_BOOTSTRAP=127.0.0.1:9092`` or
``TECHNE_VENUE_SECRETS='{"opera-lyon": ["whsec_..."]}'``. Secrets are ``SecretStr`` and are never
printed: ``repr(settings)`` masks them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from core.kafka_auth import KafkaAuth

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout, for development tools only (local broker's pom, generated dashboards, benches):
an installed package has no checkout, so no setting defaults to a path under it."""

# Operator data, relative to the working directory like ``data_dir`` (a checkout's root when
# developing; the image sets absolute paths under /app/deploy, see the Dockerfile).
DEFAULT_AGREEMENTS = Path("deploy/agreements")
DEFAULT_VENUES = Path("deploy/venues.yaml")
DEFAULT_IMPORT_PROFILES = Path("deploy/import-profiles")
DEFAULT_CONSENT_SOURCES = Path("deploy/consent-sources.yaml")


class Settings(BaseSettings):
    """Everything a bus process needs to know, for every process kind."""

    model_config = SettingsConfigDict(env_prefix="TECHNE_", frozen=True, extra="ignore")

    data_dir: Path = Field(Path(".techne"), description="Root of local state: partner stores, worker, broker.")
    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers (host:port[,host:port]).")
    partitions: int = Field(3, ge=1, description="Partitions of the topics the bus creates.")
    replication_factor: int = Field(1, ge=1, description=(
        "Replication factor of the topics the bus creates, Faust's included (3 on a production cluster, "
        "whose brokers set min.insync.replicas=2)."))
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How bus clients talk to Kafka (SASL_* with SCRAM in the compose stack).")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str | None = Field(None, description="SASL user of the bus's clients (a Kafka super user).")
    kafka_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for SASL_SSL (system CAs when unset).")

    venues_file: Path = Field(DEFAULT_VENUES, description="Venue list (relative: to the working directory).")
    agreements_dir: Path = Field(DEFAULT_AGREEMENTS, description="Data-sharing agreements, one YAML per agreement.")
    import_profiles_dir: Path = Field(DEFAULT_IMPORT_PROFILES,
                                      description="CSV import profiles (`techne import csv --profile NAME`).")
    consent_sources_file: Path = Field(
        DEFAULT_CONSENT_SOURCES, description="Which vendor opt-in question means which consent, per venue and source.")
    venue_secrets: dict[str, list[SecretStr]] = Field(
        default_factory=dict, description="Standard Webhooks secrets (whsec_...) per venue; several = rotation."
    )
    subject_key: SecretStr | None = Field(None, description="HMAC key for subject references (raw-topic keys).")
    pseudonym_keys: dict[int, SecretStr] = Field(
        default_factory=dict, description="Versioned HMAC keys for partner pseudonyms."
    )
    pseudonym_key_version: int = Field(1, description="Key version used for new pseudonyms.")

    datakey_master_keys: dict[int, SecretStr] = Field(
        default_factory=dict, description="Versioned master keys wrapping the per-person data keys that encrypt "
                                          "direct identifiers before Kafka (crypto-shredding; docs/privacy.md).")
    datakey_master_version: int = Field(1, description="Master key version that wraps new data keys.")
    datakey_cache_seconds: float = Field(
        300.0, gt=0, le=86_400, description="A producer seals a person's events with one data key for at most this "
                                            "long, then makes a new one (bounds a shredded key's life in memory).")
    seal_identifiers: bool = Field(
        True, description="Encrypt direct identifiers and free text before Kafka. Off only to measure its cost.")
    raw_retention_hours: float = Field(
        168.0, gt=0, description="Retention the bus sets on raw.<venue> topics, and the most it accepts (7 days).")
    dlq_retention_hours: float = Field(
        168.0, gt=0, description="Retention the bus sets on dlq.* topics, and the most it accepts (7 days).")
    keys_compaction_hours: float = Field(
        1.0, gt=0, description="techne.keys: segment.ms and max.compaction.lag.ms, so a shredded key's record "
                               "leaves the log within about twice this (docs/privacy.md).")
    keys_tombstone_hours: float = Field(
        24.0, gt=0, description="techne.keys: delete.retention.ms, how long a shredding tombstone stays readable.")
    kafka_topics_owned: bool = Field(
        True, description="The bus owns the cluster's topics: a topic retaining longer than the bounds stops the "
                          "start. False (an external cluster): a loud warning instead.")

    worker_id: str = Field("techne-worker", description="Faust app id: the worker group and its table topics.")
    consent_ttl_days: dict[str, int] = Field(
        default_factory=dict, description="Consent lifetime per purpose in days (default 395, i.e. 13 months).")
    consent_expiry_scan_s: float = Field(
        3600.0, gt=0, le=86_400, description="How often the worker looks for lapsed consents to erase (<= 1 day).")
    worker_commit_interval_s: float = Field(
        0.5, gt=0, le=60, description="Faust's broker_commit_interval: how often the worker flushes its producer and "
                                      "commits (a crash replays at most this much; README, performance).")
    worker_producer_linger_ms: int = Field(
        10, ge=0, le=1000, description="How long the worker's producer gathers outputs into one produce request: the "
                                       "broker's cost follows the partition batches appended (README, performance).")
    poison_window: int = Field(1000, ge=10, description="Messages over which the invalid share is measured.")
    poison_threshold: float = Field(0.5, gt=0, le=1, description="Invalid share that stops the worker (and a sink).")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    max_body_bytes: int = Field(1_048_576, ge=1024)
    produce_timeout_s: float = Field(10.0, gt=0)
    producer_linger_ms: int = Field(
        0, ge=0, le=100, description="The gateway producer's linger. 0: concurrent requests' records already share "
                                     "a produce request while the previous one is in flight; a linger only delays "
                                     "each 202 (measured, README, performance).")
    max_batch_events: int = Field(1000, ge=1, description="Most events in one batch request (413 above).")
    request_head_timeout_s: float = Field(
        30.0, gt=0, description="Time a client has to send a request's line and headers (408 after).")
    request_body_timeout_s: float = Field(
        30.0, gt=0, description="Time a client has to send a request's body once asked for it (408 after).")
    spool_deadline_s: float = Field(
        5.0, gt=0, description="Kafka acknowledgement deadline; past it accepted events go to the durable spool.")
    spool_max_events: int = Field(
        1_000_000, ge=1, description="Spool capacity in events; when full the gateway answers 503 + Retry-After.")
    spool_replay_batch: int = Field(500, ge=1, description="Spooled events sent to Kafka per replay round trip.")
    webhook_replay_ttl_s: float = Field(
        86_400.0, ge=300, description="How long accepted webhook ids are remembered (>= the 5-minute tolerance).")
    source_secrets: dict[str, dict[str, list[SecretStr]]] = Field(
        default_factory=dict, description="Vendor adapter credentials: venue -> source -> secrets (rotation).")
    source_allowed_ips: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="Optional IP allow-list (CIDRs) per venue and source; empty: any.")
    gateway_trusted_proxies: str = Field(
        "127.0.0.1", description="Proxies whose X-Forwarded-For gives the gateway the client's address (uvicorn's "
                                 "forwarded_allow_ips: comma-separated IPs/CIDRs, '*' = any). Behind the TLS proxy "
                                 "the allow-lists and the Matomo door see the venue, not the proxy.")
    web_sites: dict[str, dict[str, str | int | list[str]]] = Field(
        default_factory=dict,
        description='Web collector sites: key -> {"venue": id, "origins": [...], "id": numeric Matomo id, optional}.')
    venue_silence_hours: dict[str, float] = Field(
        default_factory=lambda: {"*": 6.0},
        description='Hours without events after which a venue alerts (TechneVenueSilent); "*" = default.')
    metrics_port: int | None = Field(None, description="Serve Prometheus /metrics on this port (None: off).")
    schema_registry_url: str | None = Field(
        None, description="External Confluent-compatible schema registry; None: the manifest's stable ids "
                          "(served by `techne registry`). See schemas/registry_client.py.")
    metrics_host: str = Field("127.0.0.1", description="Address /metrics listens on (0.0.0.0 in containers).")
    clickhouse_url: str | None = Field(None, description="ClickHouse server URL; unset: embedded chDB stores.")
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr | None = None

    read_token: SecretStr | None = Field(
        None, description="Token of the sinks' loopback read servers (unset: each sink writes a random one "
                          "in its 0600 endpoint file). See sinks/reader.py.")
    read_max_rows: int = Field(1_000_000, ge=1, description="Most rows a read query may return (refused above); "
                               "the insights read one row per person, season and venue.")
    read_timeout_s: float = Field(30.0, gt=0, description="Longest a read query may run, in seconds.")

    sink_batch_rows: int = Field(10_000, ge=1)
    sink_batch_seconds: float = Field(1.0, gt=0)

    @field_validator("pseudonym_keys")
    @classmethod
    def _keys_not_empty(cls, v: dict[int, SecretStr]) -> dict[int, SecretStr]:
        for version, key in v.items():
            if len(key.get_secret_value()) < 16:
                raise ValueError(f"pseudonym key version {version} is shorter than 16 characters")
        return v

    @field_validator("datakey_master_keys")
    @classmethod
    def _master_keys_long(cls, v: dict[int, SecretStr]) -> dict[int, SecretStr]:
        for version, key in v.items():
            if len(key.get_secret_value()) < 16:
                raise ValueError(f"data-key master key version {version} is shorter than 16 characters")
        return v

    def require_subject_key(self) -> bytes:
        """The subject-reference key as bytes; a missing key is a configuration error."""
        from core.errors import ConfigError

        if self.subject_key is None or len(self.subject_key.get_secret_value()) < 16:
            raise ConfigError("TECHNE_SUBJECT_KEY is required (at least 16 characters)")
        return self.subject_key.get_secret_value().encode()

    def current_pseudonym_key(self) -> tuple[int, bytes]:
        """``(version, key)`` used for new pseudonyms; raises ConfigError when it is missing."""
        from core.errors import ConfigError

        key = self.pseudonym_keys.get(self.pseudonym_key_version)
        if key is None:
            raise ConfigError(f"TECHNE_PSEUDONYM_KEYS has no key version {self.pseudonym_key_version}")
        return self.pseudonym_key_version, key.get_secret_value().encode()

    def kafka_auth(self) -> KafkaAuth:
        """How this process authenticates to Kafka (see core/kafka_auth.py)."""
        from core.kafka_auth import KafkaAuth

        return KafkaAuth(self.kafka_security_protocol, self.kafka_sasl_mechanism, self.kafka_username,
                         self.kafka_password, self.kafka_ssl_cafile)

    def partner_store_dir(self, partner_id: str) -> Path:
        """Directory of a partner's embedded ClickHouse store."""
        return self.data_dir / "partners" / partner_id


class GatewaySettings(Settings):
    """The gateway's (and every producer's) settings: it refuses to start without a subject key
    (the raw topics' keys and the consent ledger's depend on it)."""

    @model_validator(mode="after")
    def _subject_key(self) -> Self:
        if self.subject_key is None or len(self.subject_key.get_secret_value()) < 16:
            raise ValueError("TECHNE_SUBJECT_KEY is required (at least 16 characters)")
        return self


class WorkerSettings(Settings):
    """The stream worker's settings: it refuses to start without the pseudonym key of the
    current version (every shared record is pseudonymized with it)."""

    @model_validator(mode="after")
    def _pseudonym_key(self) -> Self:
        if self.pseudonym_key_version not in self.pseudonym_keys:
            raise ValueError(f"TECHNE_PSEUDONYM_KEYS has no key version {self.pseudonym_key_version} "
                             "(TECHNE_PSEUDONYM_KEY_VERSION)")
        return self


class SinkSettings(Settings):
    """A sink's settings: a ClickHouse server, when given, is an http(s) URL (clickhouse-connect)."""

    @model_validator(mode="after")
    def _server_url(self) -> Self:
        if self.clickhouse_url and not self.clickhouse_url.startswith(("http://", "https://")):
            raise ValueError("TECHNE_CLICKHOUSE_URL must be an http:// or https:// URL (ClickHouse's HTTP interface)")
        return self


S = TypeVar("S", bound=BaseSettings)


def load_settings(kind: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]
    """``kind`` from the environment and ``overrides``, validated once at the start of a process;
    a problem is one :class:`~core.errors.ConfigError` line per field, naming its variable."""
    from core.errors import ConfigError

    prefix = str(kind.model_config.get("env_prefix") or "TECHNE_")
    try:
        return kind(**overrides)
    except ValidationError as exc:  # never its text: it quotes the input, which may be a secret
        problems = []
        for err in exc.errors():
            where = str(err["loc"][0]).upper() if err["loc"] else ""
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{prefix}{where}: {message}" if where and not message.startswith("TECHNE_") else message)
        raise ConfigError("; ".join(problems)) from None
