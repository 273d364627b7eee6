"""Who may read and write what on Kafka: partner and venue principals, their SCRAM credentials and ACLs.

The broker runs deny-by-default (``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=false``);
the bus itself is a super user. Everybody else gets exactly the ACLs below, through Confluent's
``AdminClient`` (librdkafka):

- partner ``P`` is the principal ``User:partner-P``: READ and DESCRIBE on the topics prefixed
  ``partner.P.`` (``partner.P.ticketing``, ``partner.P.erasure``, …) and on the consumer groups
  prefixed ``partner.P.``. Nothing else: no write anywhere, no raw, audit or dead-letter topic,
  no other partner's topic (not even its name shows up in metadata).
- venue ``V`` is ``User:venue-V``: WRITE and DESCRIBE on the literal topic ``raw.V``. An
  idempotent producer needs nothing more since Kafka 2.8 (KIP-679).

Ids are restricted to ``[a-z0-9_-]`` (as the agreements' partner ids) so that one id's prefix
never covers another's topics (``partner.a.`` does not match ``partner.a-b.ticketing``; a dot
or a wildcard in an id would break that).

Onboarding creates the topics when missing and returns a fresh random password
(:class:`Issued`, a ``SecretStr``): the CLI prints it once, nothing logs it, the broker stores
only its salted SCRAM form. Onboarding a principal that already has credentials is refused
unless ``rotate=True``; it returns only once the broker accepts the new credentials (brokers
apply them from the metadata log shortly after the controller acknowledged them). Offboarding
deletes every ACL of the principal and its credentials; ACLs are checked on each request, so
open connections lose access at once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from core.errors import AccessError as AccessError  # defined with the whole tree
from core.errors import ConfigError
from core.kafka_auth import KafkaAuth, confluent_config
from core.topics import PARTNER_STREAMS, raw_topic

_PROBE_LOG = logging.getLogger("techne.access.login_probe")
ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SCRAM_ITERATIONS = 8192



def _check_id(kind: str, value: str) -> str:
    if not ID.fullmatch(value):
        raise ConfigError(f"{kind} id {value!r} must match {ID.pattern} (lower-case letters, digits, - and _)")
    return value


def partner_user(partner: str) -> str:
    return f"partner-{_check_id('partner', partner)}"


def venue_user(venue: str) -> str:
    return f"venue-{_check_id('venue', venue)}"


def partner_prefix(partner: str) -> str:
    """Prefix of the partner's topics and of the consumer groups it may use."""
    return f"partner.{_check_id('partner', partner)}."


def partner_topics(partner: str) -> list[str]:
    return [f"{partner_prefix(partner)}{stream}" for stream in PARTNER_STREAMS]


def partner_acls(partner: str) -> list[AclBinding]:
    """READ + DESCRIBE on topics and groups prefixed ``partner.P.``; nothing else."""
    principal = f"User:{partner_user(partner)}"
    prefix = partner_prefix(partner)
    return [AclBinding(resource, prefix, ResourcePatternType.PREFIXED, principal, "*", op, AclPermissionType.ALLOW)
            for resource in (ResourceType.TOPIC, ResourceType.GROUP)
            for op in (AclOperation.READ, AclOperation.DESCRIBE)]


def venue_acls(venue: str) -> list[AclBinding]:
    """WRITE + DESCRIBE on the literal topic ``raw.V``; nothing else."""
    principal = f"User:{venue_user(venue)}"
    return [AclBinding(ResourceType.TOPIC, raw_topic(venue), ResourcePatternType.LITERAL, principal, "*", op,
                       AclPermissionType.ALLOW)
            for op in (AclOperation.WRITE, AclOperation.DESCRIBE)]


@dataclass(frozen=True)
class Issued:
    """What onboarding created; ``password`` is shown to the operator once and never stored by us."""

    username: str
    password: SecretStr
    topics: list[str]
    acls: list[str]


def _principal_filter(principal: str) -> AclBindingFilter:
    """Every ACL of ``principal`` (None = any resource name, any host: librdkafka's wildcard)."""
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal,  # type: ignore[arg-type]
                            None, AclOperation.ANY, AclPermissionType.ANY)  # type: ignore[arg-type]


def _name(value: object) -> str:
    return str(getattr(value, "name", value))


def describe_acl(binding: AclBinding) -> str:
    """``TOPIC PREFIXED partner.x. READ ALLOW`` — one line per binding, for humans and tests."""
    return (f"{_name(binding.restype)} {_name(binding.resource_pattern_type)} {binding.name} "
            f"{_name(binding.operation)} {_name(binding.permission_type)}")


class Access:
    """Access management on one cluster, as the bus's super user."""

    def __init__(self, bootstrap: str, auth: KafkaAuth, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._bootstrap, self._auth = bootstrap, auth
        self._admin = AdminClient(confluent_config(auth, bootstrap))

    def _await_login(self, username: str, password: SecretStr) -> None:
        """Return once the broker authenticates ``username`` with ``password``.

        The controller acknowledges new SCRAM credentials when it has written them; brokers
        apply them from the metadata log a moment later (seconds on a loaded machine), and a
        partner that logs in within that window is refused. Onboarding therefore ends only
        when a real login succeeds (a metadata request as the new principal), or raises
        :class:`AccessError` after ``timeout`` seconds.
        """
        # the credentials onboarding creates are SCRAM-SHA-512, whatever the admin logs in with
        who = dataclasses.replace(self._auth, sasl_mechanism="SCRAM-SHA-512", username=username, password=password)
        deadline = time.monotonic() + self.timeout
        while True:
            # refusals are expected until the broker applied the credentials: librdkafka's own
            # "invalid credentials" lines go to a debug logger, not to the operator's terminal
            config: dict[str, Any] = {**confluent_config(who, self._bootstrap), "reconnect.backoff.max.ms": 500,
                                      "logger": _PROBE_LOG}
            client = AdminClient(config)
            try:
                client.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
                return
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise AccessError(f"{username} cannot log in yet ({exc.args[0]}); its credentials are set "
                                      "but their password is lost: onboard again with --rotate") from None
            time.sleep(0.2)

    def _wait(self, futures: Iterable[Future[Any]], what: str) -> list[Any]:
        try:
            return [f.result(self.timeout) for f in futures]
        except KafkaException as exc:
            raise AccessError(f"{what}: {exc.args[0]}") from None  # librdkafka error, never a secret

    # --- principals and credentials -----------------------------------------------------------

    def has_credentials(self, username: str) -> bool:
        futures = self._admin.describe_user_scram_credentials([username], request_timeout=self.timeout)
        assert isinstance(futures, dict)  # one future per user when users are named
        try:
            futures[username].result(self.timeout)
            return True
        except KafkaException as exc:
            if "RESOURCE_NOT_FOUND" in str(exc.args[0]) or "not found" in str(exc.args[0]).lower():
                return False
            raise AccessError(f"describing credentials of {username}: {exc.args[0]}") from None

    def _refuse_existing(self, username: str, rotate: bool) -> None:
        if not rotate and self.has_credentials(username):
            raise AccessError(f"{username} already has credentials; use --rotate to issue a new password")

    def _set_password(self, username: str) -> SecretStr:
        password = secrets.token_urlsafe(32)
        upsert = UserScramCredentialUpsertion(
            username, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password.encode())
        self._wait(self._admin.alter_user_scram_credentials([upsert]).values(), f"setting credentials of {username}")
        return SecretStr(password)

    def _drop_credentials(self, username: str) -> bool:
        if not self.has_credentials(username):
            return False
        deletion = UserScramCredentialDeletion(username, ScramMechanism.SCRAM_SHA_512)
        self._wait(self._admin.alter_user_scram_credentials([deletion]).values(), f"deleting credentials of {username}")
        return True

    def _ensure_topics(self, names: list[str], partitions: int) -> None:
        existing = set(self._admin.list_topics(timeout=self.timeout).topics)
        missing = [NewTopic(n, num_partitions=partitions) for n in names if n not in existing]
        if not missing:
            return
        try:
            for future in self._admin.create_topics(missing, request_timeout=self.timeout).values():
                future.result(self.timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc.args[0]):  # created concurrently
                raise AccessError(f"creating topics: {exc.args[0]}") from None

    def acls_of(self, principal: str) -> list[AclBinding]:
        future = self._admin.describe_acls(_principal_filter(principal), request_timeout=self.timeout)
        (bindings,) = self._wait([future], f"describing ACLs of {principal}")
        return list(bindings)

    def _grant(self, bindings: list[AclBinding]) -> list[str]:
        self._wait(self._admin.create_acls(bindings, request_timeout=self.timeout).values(), "creating ACLs")
        return [describe_acl(b) for b in bindings]

    def _revoke(self, principal: str) -> int:
        futures = self._admin.delete_acls([_principal_filter(principal)], request_timeout=self.timeout)
        deleted = self._wait(futures.values(), f"deleting ACLs of {principal}")
        return sum(len(d) for d in deleted)

    # --- partners and venues ------------------------------------------------------------------

    def onboard_partner(self, partner: str, partitions: int, *, rotate: bool = False) -> Issued:
        """Credentials, topics ``partner.P.*`` and read-only prefixed ACLs for partner ``P``."""
        username, topics = partner_user(partner), partner_topics(partner)
        self._refuse_existing(username, rotate)
        self._ensure_topics(topics, partitions)
        acls = self._grant(partner_acls(partner))
        password = self._set_password(username)
        if self._auth.sasl:
            self._await_login(username, password)
        return Issued(username, password, topics, acls)

    def offboard_partner(self, partner: str) -> tuple[int, bool]:
        """Revoke every ACL of ``User:partner-P`` and delete its credentials (topics are kept)."""
        username = partner_user(partner)
        return self._revoke(f"User:{username}"), self._drop_credentials(username)

    def onboard_venue(self, venue: str, partitions: int, *, rotate: bool = False) -> Issued:
        """Credentials and WRITE on ``raw.V`` (created when missing) for venue ``V``'s own producer."""
        username, topics = venue_user(venue), [raw_topic(_check_id("venue", venue))]
        self._refuse_existing(username, rotate)
        self._ensure_topics(topics, partitions)
        acls = self._grant(venue_acls(venue))
        password = self._set_password(username)
        if self._auth.sasl:
            self._await_login(username, password)
        return Issued(username, password, topics, acls)

    def offboard_venue(self, venue: str) -> tuple[int, bool]:
        username = venue_user(venue)
        return self._revoke(f"User:{username}"), self._drop_credentials(username)
