"""How the bus's Kafka clients authenticate, in one value: :class:`KafkaAuth`.

``Settings.kafka_auth()`` (from ``TECHNE_KAFKA_SECURITY_PROTOCOL``, ``TECHNE_KAFKA_SASL_MECHANISM``,
``TECHNE_KAFKA_USERNAME``, ``TECHNE_KAFKA_PASSWORD``, ``TECHNE_KAFKA_SSL_CAFILE``) and
``LocalKafka.admin_auth`` both produce one; the functions below turn it into the options of
each client library the bus uses:

- :func:`aiokafka_kwargs` — keyword arguments for ``AIOKafkaProducer`` / ``AIOKafkaConsumer`` /
  ``AIOKafkaAdminClient`` (``{"security_protocol": "PLAINTEXT"}`` when unauthenticated);
- :func:`faust_credentials` — ``broker_credentials`` for ``faust.App`` (``None`` for PLAINTEXT);
- :func:`confluent_config` — librdkafka properties for ``confluent_kafka`` clients.

The password is a ``SecretStr``: ``repr`` and ``str`` of a :class:`KafkaAuth` never show it; it
is revealed only inside the returned client options.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from core.errors import ConfigError

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


@dataclass(frozen=True)
class KafkaAuth:
    """Security protocol and SASL credentials of one Kafka principal."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    ssl_cafile: Path | None = None

    def __post_init__(self) -> None:
        if self.sasl and (not self.username or self.password is None):
            raise ConfigError(f"{self.security_protocol} needs TECHNE_KAFKA_USERNAME and TECHNE_KAFKA_PASSWORD")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def principal(self) -> str:
        """The principal the broker's authorizer sees (``User:ANONYMOUS`` without SASL)."""
        return f"User:{self.username}" if self.sasl else "User:ANONYMOUS"

    def _secret(self) -> str:
        return self.password.get_secret_value() if self.password is not None else ""

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol != "SASL_SSL":
            return None
        return ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)


def aiokafka_kwargs(auth: KafkaAuth) -> dict[str, Any]:
    """Options to add to any aiokafka client constructor."""
    if not auth.sasl:
        return {"security_protocol": "PLAINTEXT"}
    kwargs: dict[str, Any] = {
        "security_protocol": auth.security_protocol,
        "sasl_mechanism": auth.sasl_mechanism,
        "sasl_plain_username": auth.username,
        "sasl_plain_password": auth._secret(),
    }
    context = auth._ssl_context()
    if context is not None:
        kwargs["ssl_context"] = context
    return kwargs


def faust_credentials(auth: KafkaAuth) -> Any:
    """``broker_credentials`` for ``faust.App`` (``None`` when unauthenticated)."""
    if not auth.sasl:
        return None
    from faust.auth import SASLCredentials

    return SASLCredentials(username=auth.username, password=auth._secret(), mechanism=auth.sasl_mechanism,
                           ssl_context=auth._ssl_context())


def confluent_config(auth: KafkaAuth, bootstrap: str) -> dict[str, str | int | float | bool]:
    """librdkafka properties (``bootstrap.servers`` and security) for a ``confluent_kafka`` client."""
    config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap,
                                                   "security.protocol": auth.security_protocol}
    if auth.sasl:
        config.update({"sasl.mechanism": auth.sasl_mechanism, "sasl.username": str(auth.username),
                       "sasl.password": auth._secret()})
    if auth.security_protocol == "SASL_SSL" and auth.ssl_cafile is not None:
        config["ssl.ca.location"] = str(auth.ssl_cafile)
    return config


def auth_env(auth: KafkaAuth) -> dict[str, str]:
    """``TECHNE_KAFKA_*`` environment entries that make a child process use ``auth``."""
    env: dict[str, str] = {"TECHNE_KAFKA_SECURITY_PROTOCOL": auth.security_protocol}
    if auth.sasl:
        env.update({"TECHNE_KAFKA_SASL_MECHANISM": auth.sasl_mechanism, "TECHNE_KAFKA_USERNAME": str(auth.username),
                    "TECHNE_KAFKA_PASSWORD": auth._secret()})
    if auth.ssl_cafile is not None:
        env["TECHNE_KAFKA_SSL_CAFILE"] = str(auth.ssl_cafile)
    return env


def env_kwargs() -> dict[str, Any]:
    """aiokafka client options for this process's configured identity (``TECHNE_KAFKA_*``).

    Helpers that only receive a bootstrap address use this, so every client of a process
    authenticates the same way without threading credentials through each call.
    """
    from core.settings import Settings

    return aiokafka_kwargs(Settings(**{}).kafka_auth())  # values from the environment
