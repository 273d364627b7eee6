"""Sealed identifiers: the catalogue's direct identifiers, encrypted field by field before Kafka.

Which fields: every leaf tagged ``direct`` or ``free_text`` (see :mod:`schemas.privacy`) in the
latest version of a schema, e.g. ``subject.email``, ``subject.phone``, ``barcode``, ``url``.
The Avro schemas do not change: a sealed field (a string, or each value of a map of strings)
holds a *token* string in place of its value::

    "$tk1$" + base64url(kid (16 bytes) | nonce (12) | AES-256-GCM ciphertext and tag)

under the subject's data key (:class:`core.datakeys.DataKey`), with the AAD
``<event_id>|<field path>``: a token cannot be moved to another event or field unnoticed.

Contract:

* :meth:`Sealer.seal` replaces, in place, every non-null sealed field of a record by its token.
* :meth:`Sealer.open` puts the clear values back in place, looking each token's key up with
  ``lookup(kid)``; a key the lookup does not know (``None``: shredded) turns the field to
  ``None`` and :meth:`open` returns ``True`` ("this record belonged to an erased subject"). A token
  whose key is known but that does not authenticate raises :class:`InvalidMessage` (stage
  ``decode``, reason ``bad_seal``). Values that are not tokens (events written before sealing
  existed) are left as they are.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.datakeys import KID_BYTES, NONCE_BYTES, DataKey
from core.errors import InvalidMessage
from schemas.codec import CATALOGUE
from schemas.privacy import privacy_tags

SEALED_TAGS = frozenset({"direct", "free_text"})
PREFIX = "$tk1$"
_HEAD = KID_BYTES + NONCE_BYTES

KeyLookup = Callable[[bytes], AESGCM | None]
"""kid -> the cipher of that data key of the record's subject, or None when it no longer exists."""


@cache
def sealed_paths(schema_name: str) -> tuple[tuple[str, ...], ...]:
    """The dotted paths (split) of the fields of ``schema_name`` that are sealed."""
    return tuple(tuple(p.split(".")) for p, tag in privacy_tags(schema_name).items() if tag in SEALED_TAGS)


def is_token(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _each(container: Any, path: tuple[str, ...], fn: Callable[[dict[str, Any], str], None]) -> None:
    """Apply ``fn(parent, field)`` to every place ``path`` reaches (through nested records and arrays)."""
    if isinstance(container, list):
        for item in container:
            _each(item, path, fn)
        return
    if not isinstance(container, dict):
        return
    head = path[0]
    if len(path) == 1:
        if container.get(head) is not None:
            fn(container, head)
        return
    _each(container.get(head), path[1:], fn)


class Sealer:
    """Seals and opens the sealed fields of records of the shipped catalogue."""

    def seal(self, name: str, record: dict[str, Any], key: DataKey) -> None:
        """Encrypt every non-null sealed field of ``record`` (schema ``name``) in place with ``key``."""
        event_id = str(record.get("event_id", ""))
        for path in sealed_paths(name):
            dotted = ".".join(path)

            def seal_one(parent: dict[str, Any], field: str, dotted: str = dotted) -> None:
                value = parent[field]
                if isinstance(value, dict):  # a map of strings: each value sealed, its keys kept
                    parent[field] = {k: self._seal(key, v, f"{event_id}|{dotted}.{k}") for k, v in value.items()}
                else:
                    parent[field] = self._seal(key, value, f"{event_id}|{dotted}")

            _each(record, path, seal_one)

    @staticmethod
    def _seal(key: DataKey, value: Any, aad: str) -> Any:
        if value is None or is_token(value):
            return value
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, str(value).encode(), aad.encode())
        return PREFIX + base64.urlsafe_b64encode(key.kid + nonce + sealed).decode()

    def open(self, name: str, record: dict[str, Any], lookup: KeyLookup) -> bool:
        """Decrypt the sealed fields of ``record`` in place; ``True`` if a key was missing (shredded)."""
        event_id = str(record.get("event_id", ""))
        missing: list[bool] = []
        for path in sealed_paths(name):
            dotted = ".".join(path)

            def open_one(parent: dict[str, Any], field: str, dotted: str = dotted) -> None:
                value = parent[field]
                if isinstance(value, dict):
                    parent[field] = {k: _open(name, f"{dotted}.{k}", event_id, v, lookup, missing)
                                     for k, v in value.items()}
                else:
                    parent[field] = _open(name, dotted, event_id, value, lookup, missing)

            _each(record, path, open_one)
        return bool(missing)


def _open(name: str, dotted: str, event_id: str, value: Any, lookup: KeyLookup, missing: list[bool]) -> Any:
    """The clear value of one token (``None`` and a mark in ``missing`` when its key is gone)."""
    if not is_token(value):
        return value
    try:
        raw = base64.urlsafe_b64decode(value[len(PREFIX):])
    except (binascii.Error, ValueError):
        raise InvalidMessage("decode", "bad_seal", f"{name}.{dotted}: token is not base64") from None
    if len(raw) <= _HEAD:
        raise InvalidMessage("decode", "bad_seal", f"{name}.{dotted}: token too short")
    aead = lookup(raw[:KID_BYTES])
    if aead is None:
        missing.append(True)
        return None
    try:
        return aead.decrypt(raw[KID_BYTES:_HEAD], raw[_HEAD:], f"{event_id}|{dotted}".encode()).decode()
    except (InvalidTag, UnicodeDecodeError):
        raise InvalidMessage("decode", "bad_seal", f"{name}.{dotted}: token does not authenticate") from None


SEALER = Sealer()
__all__ = ["CATALOGUE", "PREFIX", "SEALED_TAGS", "SEALER", "KeyLookup", "Sealer", "is_token", "sealed_paths"]
