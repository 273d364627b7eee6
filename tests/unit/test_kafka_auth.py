"""KafkaAuth -> client options for aiokafka, Faust and librdkafka; the password never shows."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from core.errors import ConfigError
from core.kafka_auth import KafkaAuth, aiokafka_kwargs, auth_env, confluent_config, faust_credentials
from core.settings import Settings

SCRAM = KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", "techne-admin", SecretStr("s3cret-s3cret"))


def test_plaintext_is_the_default() -> None:
    assert aiokafka_kwargs(KafkaAuth()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(KafkaAuth()) is None
    assert confluent_config(KafkaAuth(), "h:1") == {"bootstrap.servers": "h:1", "security.protocol": "PLAINTEXT"}
    assert KafkaAuth().principal == "User:ANONYMOUS"


def test_scram_options_for_each_client() -> None:
    assert aiokafka_kwargs(SCRAM) == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                                      "sasl_plain_username": "techne-admin", "sasl_plain_password": "s3cret-s3cret"}
    assert confluent_config(SCRAM, "h:1")["sasl.password"] == "s3cret-s3cret"
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    mapped = dict(credentials_to_aiokafka_auth(faust_credentials(SCRAM)))
    assert {k: v for k, v in mapped.items() if v is not None} == aiokafka_kwargs(SCRAM)
    assert SCRAM.principal == "User:techne-admin"


def test_password_is_never_shown() -> None:
    assert "s3cret" not in repr(SCRAM) and "s3cret" not in str(SCRAM)
    assert "s3cret" not in repr(faust_credentials(SCRAM))


def test_sasl_needs_a_user_and_a_password() -> None:
    with pytest.raises(ConfigError):
        KafkaAuth("SASL_PLAINTEXT", "SCRAM-SHA-512", None, None)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in auth_env(SCRAM).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.kafka_auth() == SCRAM
    assert "s3cret" not in repr(settings)


def test_sasl_ssl_uses_a_tls_context() -> None:
    auth = KafkaAuth("SASL_SSL", "SCRAM-SHA-512", "u", SecretStr("p"))
    assert aiokafka_kwargs(auth)["ssl_context"] is not None
    assert faust_credentials(auth).protocol.value == "SASL_SSL"
