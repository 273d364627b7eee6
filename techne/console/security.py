"""Sessions, CSRF tokens and login rate limiting of the console.

- **Session**: one cookie (``techne_session``, HttpOnly, SameSite=Lax, Secure behind TLS)
  holding ``{"u": login or None, "c": csrf token, "t": issued}``, signed with itsdangerous
  (HMAC-SHA1 under :func:`console_secret`, salt ``techne-console-session``) and refused once
  older than ``session_hours`` or if its signature does not verify: the request is then
  anonymous. Nothing else is trusted from the cookie: the user's role and venue are read from
  the user store at every request, so a removed user is out at once.
- **CSRF**: every session, anonymous included, carries a random token; every ``POST`` must send
  it back in the form field ``csrf`` (constant-time comparison), the login form too. A new
  token is issued at login and logout.
- **Rate limit**: :class:`LoginLimiter` allows ``attempts`` failed logins per login name and
  :data:`ADDRESS_FACTOR` times as many per client address (a venue's team may share one address)
  over ``window_s``; beyond, logins are refused (429) until enough failures leave the window. In
  memory, per console process. Behind a proxy the client address comes from ``X-Forwarded-For``,
  trusted only from ``trusted_proxies``.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

COOKIE = "techne_session"
SALT = "techne-console-session"
MIN_SECRET = 32


class ConsoleSettings(BaseSettings):
    """``TECHNE_CONSOLE_*`` settings of the console process."""

    model_config = SettingsConfigDict(env_prefix="TECHNE_CONSOLE_", frozen=True, extra="ignore")

    secret: SecretStr | None = Field(
        None, description="Key signing the session cookies (unset: a random key kept in <data_dir>/console/secret).")
    session_hours: float = Field(8.0, gt=0, description="A session expires this long after login.")
    secure_cookies: bool = Field(False, description="Send cookies only over HTTPS (true behind the TLS proxy).")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest file the import page takes.")
    login_attempts: int = Field(5, ge=1, description="Failed logins allowed per login name per window "
                                                     "(four times as many per client address).")
    login_window_s: float = Field(900.0, gt=0, description="Window of the login rate limit, in seconds.")
    public_url: str | None = Field(None, description="Address the console is reached at (printed, used in links).")
    trusted_proxies: str = Field("127.0.0.1", description="Proxies whose X-Forwarded-For gives the client address "
                                                         "(compose: '*', the console is reached through caddy only).")
    gateway_url: str = Field("http://127.0.0.1:8080", description="Public address of the gateway, which serves the "
                                                                  "preference centre the links point to.")

    @field_validator("secret", mode="before")
    @classmethod
    def _strong_secret(cls, value: Any) -> Any:
        """Empty means unset (compose passes ``${TECHNE_CONSOLE_SECRET:-}``): never an empty signing
        key, which would let anyone forge a session; a given key has at least :data:`MIN_SECRET` characters."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or (isinstance(text, str) and not text.strip()):
            return None
        if isinstance(text, str) and len(text.strip()) < MIN_SECRET:
            raise ValueError(f"TECHNE_CONSOLE_SECRET: at least {MIN_SECRET} characters (or unset: a random key "
                             "kept in <data_dir>/console/secret)")
        return value


def console_secret(settings: ConsoleSettings, data_dir: Path) -> bytes:
    """The signing key: the setting, else a random key created once in a 0600 file."""
    if settings.secret is not None:
        return settings.secret.get_secret_value().encode()
    path = data_dir / "console" / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # written aside, then linked in: the file never exists empty or half-written
        draft = path.with_name(f".secret-{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:  # another console process drew it first: use theirs
            pass
        finally:
            draft.unlink()
    key = path.read_bytes().strip()
    if len(key) < MIN_SECRET:
        raise ConfigError(f"{path}: the console's signing key is shorter than {MIN_SECRET} characters; "
                          "delete the file to draw a new one (open sessions end)")
    return key


@dataclass(frozen=True)
class Session:
    username: str | None
    csrf: str

    @staticmethod
    def fresh(username: str | None = None) -> Session:
        return Session(username, secrets.token_urlsafe(24))


class Sessions:
    """Sign and read session cookies (see module doc)."""

    def __init__(self, key: bytes, max_age_s: float) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt=SALT)
        self.max_age_s = max_age_s

    def dump(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.username, "c": session.csrf})

    def load(self, cookie: str | None) -> Session | None:
        """The session, or ``None`` if absent, forged, tampered with or expired."""
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=int(self.max_age_s))
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user = data.get("u")
        return Session(user if isinstance(user, str) else None, data["c"])


def csrf_ok(session: Session | None, sent: object) -> bool:
    return session is not None and isinstance(sent, str) and hmac.compare_digest(sent.encode(), session.csrf.encode())


ADDRESS_FACTOR = 4
"""A client address (keys ``ip:…``) may fail this many times more often than one login name."""


SWEEP_MIN = 1024
"""Keys held before the limiter first drops those whose failures all left the window."""


class LoginLimiter:
    """Failed-login budget per key (client address, login name); see module doc."""

    def __init__(self, attempts: int, window_s: float, clock: Any = time.monotonic) -> None:
        self.attempts, self.window_s, self._clock = attempts, window_s, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._sweep_at = SWEEP_MIN

    def _recent(self, key: str, now: float) -> deque[float]:
        """The key's failures within the window; a key left with none is forgotten (memory stays
        bounded by the failures of one window, whatever names clients try)."""
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, *keys: str) -> float:
        """Seconds until a login may be tried for these keys (0: allowed now)."""
        now = self._clock()
        with self._lock:
            waits = [f[len(f) - budget] + self.window_s - now for k in keys
                     if len(f := self._recent(k, now)) >= (budget := self._budget(k))]
        return max(waits, default=0.0)

    def _budget(self, key: str) -> int:
        return self.attempts * (ADDRESS_FACTOR if key.startswith("ip:") else 1)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now)
                self._failures[key].append(now)
            if len(self._failures) >= self._sweep_at:  # amortized: names never tried again leave too
                for key in list(self._failures):
                    self._recent(key, now)
                self._sweep_at = max(SWEEP_MIN, 2 * len(self._failures))

    def succeeded(self, name_key: str) -> None:
        with self._lock:
            self._failures.pop(name_key, None)
