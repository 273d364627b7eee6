"""Per-subject data keys for crypto-shredding: creation, wrapping, and their key-topic records.

Direct identifiers are encrypted before they enter Kafka with a *data key* of their subject
(:mod:`schemas.sealing`); deleting that key (a tombstone on the key topic) makes every copy of
them unreadable: raw topics, dead letters, spools, backups, replays.

Contract:

* A :class:`DataKey` is 32 random bytes (AES-256-GCM) with a random 16-byte ``kid``, owned by one
  subject: the raw-topic key of its events (the keyed subject reference, ``anonymous`` for events
  without an identifier).
* Its key-topic record (:func:`key_record`): key ``b"<subject>/<kid hex>"``, value the JSON
  ``{"v": master version, "nonce": b64, "wrapped": b64, "created_at": unix seconds}`` where
  ``wrapped`` is the data key under the master key of version ``v`` (AES-256-GCM, AAD = the record
  key, so a wrapped key cannot be moved to another subject). A record with no value (tombstone)
  means the key was shredded.
* :class:`MasterKeys`: versioned master keys from the settings (``TECHNE_DATAKEY_MASTER_KEYS``),
  each an HKDF-SHA256 of its secret; new keys are wrapped with the current version, any
  configured version unwraps (rotation: see docs/privacy.md).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError, InvalidMessage

KID_BYTES = 16
NONCE_BYTES = 12


@dataclass(frozen=True)
class DataKey:
    """One data key of one subject; ``aead`` is the ready cipher."""

    subject: str
    kid: bytes
    secret: bytes = field(repr=False)
    created_at: float
    aead: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aead", AESGCM(self.secret))

    @property
    def record_key(self) -> bytes:
        return record_key(self.subject, self.kid)

    @classmethod
    def generate(cls, subject: str, now: float | None = None) -> DataKey:
        return cls(subject, os.urandom(KID_BYTES), AESGCM.generate_key(bit_length=256),
                   time.time() if now is None else now)


def record_key(subject: str, kid: bytes) -> bytes:
    """The key-topic record key of ``kid`` of ``subject``."""
    return f"{subject}/{kid.hex()}".encode()


def parse_record_key(key: bytes) -> tuple[str, bytes]:
    """``(subject, kid)`` of a key-topic record key (raises ``InvalidMessage`` if malformed)."""
    subject, sep, kid_hex = key.decode(errors="replace").rpartition("/")
    try:
        kid = bytes.fromhex(kid_hex)
    except ValueError:
        kid = b""
    if not sep or not subject or len(kid) != KID_BYTES:
        raise InvalidMessage("keys", "bad_key_record", "key-topic record key is not <subject>/<kid hex>")
    return subject, kid


class MasterKeys:
    """Versioned master keys that wrap data keys (never leave the process)."""

    def __init__(self, secrets: Mapping[int, str], current: int) -> None:
        if current not in secrets:
            raise ConfigError(f"TECHNE_DATAKEY_MASTER_KEYS has no version {current} "
                              f"(TECHNE_DATAKEY_MASTER_VERSION)")
        for version, secret in secrets.items():
            if len(secret) < 16:
                raise ConfigError(f"data-key master key version {version} is shorter than 16 characters")
        self.current = current
        self._aead = {v: AESGCM(_derive(s)) for v, s in secrets.items()}

    @property
    def versions(self) -> list[int]:
        return sorted(self._aead)

    def wrap(self, key: DataKey) -> bytes:
        """The key-topic record value of ``key`` (JSON), wrapped with the current master key."""
        nonce = os.urandom(NONCE_BYTES)
        wrapped = self._aead[self.current].encrypt(nonce, key.secret, key.record_key)
        return json.dumps({"v": self.current, "nonce": _b64(nonce), "wrapped": _b64(wrapped),
                           "created_at": round(key.created_at, 3)}, separators=(",", ":")).encode()

    def unwrap(self, rkey: bytes, value: bytes) -> DataKey:
        """The data key of a key-topic record; ``InvalidMessage`` if it cannot be opened
        (unknown master version, tampered or moved record)."""
        subject, kid = parse_record_key(rkey)
        try:
            doc = json.loads(value)
            aead = self._aead.get(int(doc["v"]))
            if aead is None:
                raise InvalidMessage("keys", "unknown_master_version", f"master key version {doc['v']} not configured")
            secret = aead.decrypt(base64.b64decode(doc["nonce"]), base64.b64decode(doc["wrapped"]), rkey)
            return DataKey(subject, kid, secret, float(doc.get("created_at", 0.0)))
        except InvalidMessage:
            raise
        except (InvalidTag, ValueError, KeyError, TypeError) as exc:
            raise InvalidMessage("keys", "bad_key_record", type(exc).__name__) from exc

    @classmethod
    def from_settings(cls, settings: object) -> MasterKeys:
        """From ``datakey_master_keys`` / ``datakey_master_version`` (a ``ConfigError`` when absent)."""
        keys = getattr(settings, "datakey_master_keys", {}) or {}
        if not keys:
            raise ConfigError("TECHNE_DATAKEY_MASTER_KEYS is required (e.g. '{\"1\": \"<32+ random chars>\"}'): "
                              "it wraps the per-person keys that encrypt direct identifiers")
        version = int(getattr(settings, "datakey_master_version", 1))
        return cls({v: k.get_secret_value() for v, k in keys.items()}, version)


def _derive(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"techne-datakey-master").derive(secret.encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
