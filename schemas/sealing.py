"""Sealed identifiers: the catalogue's direct identifiers, encrypted field by field before Kafka.

Which fields: every leaf tagged ``direct`` or ``free_text`` (see :mod:`schemas.privacy`) in the
latest version of a schema, e.g. ``subject.email``, ``subject.phone``, ``barcode``, ``url``.
The Avro schemas do not change: a sealed field (a string, or each value of a map of strings)
holds a *token* string in place of its value::

    "$tk1$" + base64(kid (16 bytes) | nonce (12) | AES-256-GCM ciphertext and tag)

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

import binascii
import os
from collections.abc import Callable, Iterator
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


@cache
def _plan(schema_name: str) -> tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...]:
    """The sealed fields grouped by the record that holds them: ``((parent path, ((field, dotted
    path), ...)), ...)``, so a record is walked once per parent, not once per field."""
    groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for path in sealed_paths(schema_name):
        groups.setdefault(path[:-1], []).append((path[-1], ".".join(path)))
    return tuple((parent, tuple(fields)) for parent, fields in groups.items())


def is_token(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _parents(container: Any, path: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every record ``path`` leads to from ``container`` (through nested records and arrays)."""
    if isinstance(container, list):
        for item in container:
            yield from _parents(item, path)
    elif isinstance(container, dict):
        if not path:
            yield container
        else:
            yield from _parents(container.get(path[0]), path[1:])


class Sealer:
    """Seals and opens the sealed fields of records of the shipped catalogue."""

    def seal(self, name: str, record: dict[str, Any], key: DataKey) -> None:
        """Encrypt every non-null sealed field of ``record`` (schema ``name``) in place with ``key``."""
        prefix = f"{record.get('event_id', '')}|"
        encrypt, kid = key.aead.encrypt, key.kid
        for parent_path, fields in _plan(name):
            for parent in _parents(record, parent_path):
                for field, dotted in fields:
                    value = parent.get(field)
                    if value is None:
                        continue
                    if isinstance(value, dict):  # a map of strings: each value sealed, its keys kept
                        parent[field] = {k: _seal(encrypt, kid, v, f"{prefix}{dotted}.{k}") for k, v in value.items()}
                    else:
                        parent[field] = _seal(encrypt, kid, value, prefix + dotted)

    def open(self, name: str, record: dict[str, Any], lookup: KeyLookup) -> bool:
        """Decrypt the sealed fields of ``record`` in place; ``True`` if a key was missing (shredded)."""
        prefix = f"{record.get('event_id', '')}|"
        missing: list[bool] = []
        for parent_path, fields in _plan(name):
            for parent in _parents(record, parent_path):
                for field, dotted in fields:
                    value = parent.get(field)
                    if value is None:
                        continue
                    if isinstance(value, dict):
                        parent[field] = {k: _open(name, f"{dotted}.{k}", prefix, v, lookup, missing)
                                         for k, v in value.items()}
                    else:
                        parent[field] = _open(name, dotted, prefix, value, lookup, missing)
        return bool(missing)


def _seal(encrypt: Callable[[bytes, bytes, bytes], bytes], kid: bytes, value: Any, aad: str) -> Any:
    if value is None or is_token(value):
        return value
    nonce = os.urandom(NONCE_BYTES)
    sealed = encrypt(nonce, str(value).encode(), aad.encode())
    return PREFIX + binascii.b2a_base64(kid + nonce + sealed, newline=False).decode()


def _open(name: str, dotted: str, prefix: str, value: Any, lookup: KeyLookup, missing: list[bool]) -> Any:
    """The clear value of one token (``None`` and a mark in ``missing`` when its key is gone)."""
    if not is_token(value):
        return value
    try:
        raw = binascii.a2b_base64(value[len(PREFIX):])
    except (binascii.Error, ValueError):
        raise InvalidMessage("decode", "bad_seal", f"{name}.{dotted}: token is not base64") from None
    if len(raw) <= _HEAD:
        raise InvalidMessage("decode", "bad_seal", f"{name}.{dotted}: token too short")
    aead = lookup(raw[:KID_BYTES])
    if aead is None:
        missing.append(True)
        return None
    try:
        return aead.decrypt(raw[KID_BYTES:_HEAD], raw[_HEAD:], (prefix + dotted).encode()).decode()
    except (InvalidTag, UnicodeDecodeError):
        raise InvalidMessage("decode", "bad_seal", f"{name}.{dotted}: token does not authenticate") from None


SEALER = Sealer()
__all__ = ["CATALOGUE", "PREFIX", "SEALED_TAGS", "SEALER", "KeyLookup", "Sealer", "is_token", "sealed_paths"]
