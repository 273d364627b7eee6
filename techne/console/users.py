"""The console's users and one-time sign-in links, in ``<data_dir>/console/console.sqlite``.

- A user is a login name, a role and, for the ``venue`` role, the one venue it belongs to; the
  ``operator`` role sees every venue. Passwords are stored as argon2id hashes (argon2-cffi's
  defaults), re-hashed on login when those defaults change; there is no default password: a
  user without a password signs in only through a one-time link.
- A one-time link (:meth:`UserStore.issue_link`) is a random token whose SHA-256 is stored with
  an expiry; :meth:`UserStore.redeem_link` accepts it once.
- Login names: 3-64 characters of ``[a-z0-9._@-]`` (an e-mail address works).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import ConfigError

ROLES = ("venue", "operator")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
MIN_PASSWORD = 12
LINK_TTL_S = 3600.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, venue TEXT, password_hash TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, expires_at REAL NOT NULL, used_at REAL);
"""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    venue: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def may_see(self, venue: str) -> bool:
        """An operator sees every venue; a venue's user only its own."""
        return self.is_operator or self.venue == venue


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    """Users and links of one console (thread-safe; see module doc)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.stat().st_uid == os.getuid():
            path.parent.chmod(0o700)  # the console's directory: password hashes, key, uploaded files
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def add(self, username: str, *, role: str = "venue", venue: str | None = None, password: str | None = None,
            known_venues: set[str] | None = None) -> User:
        """Create a user (:class:`ConfigError` for a bad name, role, venue, short password or a duplicate)."""
        if not NAME_RE.match(username):
            raise ConfigError(f"login name {username!r}: 3-64 characters among a-z 0-9 . _ @ -")
        if role not in ROLES:
            raise ConfigError(f"role must be one of {ROLES}")
        if role == "venue" and not venue:
            raise ConfigError("a venue user needs --venue")
        if role == "operator":
            venue = None
        if venue is not None and known_venues is not None and venue not in known_venues:
            raise ConfigError(f"unknown venue {venue!r}")
        if password is not None and len(password) < MIN_PASSWORD:
            raise ConfigError(f"password shorter than {MIN_PASSWORD} characters")
        hashed = self._hasher.hash(password) if password is not None else None
        with self._lock:
            try:
                self._db.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                                 (username, role, venue, hashed, time.time()))
            except sqlite3.IntegrityError:
                raise ConfigError(f"user {username!r} already exists") from None
        return User(username, role, venue)

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"password shorter than {MIN_PASSWORD} characters")
        with self._lock:
            done = self._db.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                                    (self._hasher.hash(password), username)).rowcount
        if not done:
            raise ConfigError(f"no user {username!r}")

    def get(self, username: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT username, role, venue FROM users WHERE username = ?", (username,)).fetchone()
        return User(*row) if row else None

    def list(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT username, role, venue FROM users ORDER BY username").fetchall()
        return [User(*r) for r in rows]

    def remove(self, username: str) -> bool:
        with self._lock:
            return bool(self._db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount)

    def verify(self, username: str, password: str) -> User | None:
        """The user if ``password`` is theirs; ``None`` otherwise (same work for unknown names)."""
        with self._lock:
            row = self._db.execute("SELECT password_hash FROM users WHERE username = ?", (username,)).fetchone()
        stored = row[0] if row and row[0] else None
        try:
            self._hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if stored is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            self.set_password(username, password)
        return self.get(username)

    def issue_link(self, username: str, ttl_s: float = LINK_TTL_S) -> str:
        """A one-time sign-in token for ``username`` (valid ``ttl_s`` seconds, once)."""
        if self.get(username) is None:
            raise ConfigError(f"no user {username!r}")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute("INSERT INTO links VALUES (?, ?, ?, NULL)",
                             (_digest(token), username, time.time() + ttl_s))
        return token

    def redeem_link(self, token: str) -> User | None:
        """The link's user, once; ``None`` if unknown, expired or already used."""
        with self._lock:
            done = self._db.execute("UPDATE links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL "
                                    "AND expires_at > ? RETURNING username",
                                    (time.time(), _digest(token), time.time())).fetchone()
        return self.get(done[0]) if done else None

    def close(self) -> None:
        self._db.close()
