"""The console's access rules, on the real application (Starlette's test client, no broker needed):
every venue route tried with another venue's session, forged / tampered / expired / removed
sessions, forms without their CSRF token, the login rate limit, password hashes and one-time links."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.routing import Route
from starlette.testclient import TestClient

from core.errors import ConfigError
from core.settings import Settings
from techne.console import uploads
from techne.console.app import create_app
from techne.console.security import COOKIE, SALT, ConsoleSettings, LoginLimiter
from techne.console.users import UserStore

A, B = "gemeaux", "chaillot"
PASSWORD = "a-long-enough-password"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, subject_key="k" * 32)


@pytest.fixture
def users(settings: Settings) -> Iterator[UserStore]:
    store = UserStore(settings.data_dir / "console" / "console.sqlite")
    store.add("user-a", venue=A, password=PASSWORD)
    store.add("user-b", venue=B, password=PASSWORD)
    store.add("ops", role="operator", password=PASSWORD)
    yield store
    store.close()


def client(settings: Settings, users: UserStore, **console: object) -> TestClient:
    return TestClient(create_app(settings, ConsoleSettings.model_validate(console), users), follow_redirects=False)


def csrf_of(c: TestClient, path: str = "/connexion") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', c.get(path, follow_redirects=True).text)
    assert match
    return match.group(1)


def login(c: TestClient, username: str, password: str = PASSWORD) -> str:
    resp = c.post("/connexion", data={"csrf": csrf_of(c), "username": username, "password": password})
    assert resp.status_code == 303, resp.text
    return csrf_of(c, resp.headers["location"].replace("/partage", "/import") if "/lieux/" in
                   resp.headers["location"] else "/lieux")


def venue_routes(c: TestClient) -> list[tuple[str, str]]:
    """``(method, path template)`` of every route of the app that names a venue."""
    found = []
    for route in c.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and "{venue}" in route.path:
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


def test_every_venue_route_refuses_another_venues_session(settings: Settings, users: UserStore) -> None:
    secret_name = "ventes-secretes-chaillot.csv"
    b_upload = uploads.save(settings, B, secret_name, b"N\xc2\xb0 commande;x\r\n1;2\r\n", "billetterie-fr", "user-b")
    c = client(settings, users)
    csrf = login(c, "user-a")
    routes = venue_routes(c)
    assert len(routes) >= 13 and {("POST", "/lieux/{venue}/import"), ("GET", "/lieux/{venue}/partage/dpo"),
                                  ("GET", "/lieux/{venue}/import/{upload_id}/erreurs.csv")} <= set(routes)
    for method, template in routes:
        for venue, upload_id, expected in ((B, b_upload, 403), ("nulle-part", b_upload, 404), (A, b_upload, 404)):
            if venue == A and "{upload_id}" not in template:
                continue  # A's own pages are A's to read
            path = template.format(venue=venue, upload_id=upload_id)
            resp = c.request(method, path, data={"csrf": csrf} if method == "POST" else None)
            assert resp.status_code == expected, (method, path, resp.status_code)
            assert secret_name not in resp.text
    # nothing of B's was sent or changed by those requests
    assert (uploads.meta(settings, B, b_upload) or {})["result"] is None


def test_an_operator_sees_every_venue_and_a_venue_user_only_its_own(settings: Settings, users: UserStore) -> None:
    b_upload = uploads.save(settings, B, "export-b.csv", b"x;y\r\n", "billetterie-fr", "user-b")
    ops = client(settings, users)
    login(ops, "ops")
    assert ops.get(f"/lieux/{B}").headers["location"] == f"/lieux/{B}/partage"
    page = ops.get(f"/lieux/{B}/import")
    assert page.status_code == 200 and "export-b.csv" in page.text and b_upload in page.text
    venue_user = client(settings, users)
    login(venue_user, "user-a")
    assert venue_user.get("/lieux").headers["location"] == f"/lieux/{A}/partage"
    assert venue_user.get("/").headers["location"] == f"/lieux/{A}/partage"
    own = venue_user.get(f"/lieux/{A}/import")
    assert own.status_code == 200 and "export-b.csv" not in own.text


def test_forged_tampered_expired_and_removed_sessions_are_refused(settings: Settings, users: UserStore) -> None:
    c = client(settings, users)
    login(c, "user-a")
    page = f"/lieux/{A}/import"
    assert c.get(page).status_code == 200
    genuine = c.cookies[COOKIE]

    forged = URLSafeTimedSerializer(b"not-the-console-key", salt=SALT).dumps({"u": "ops", "c": "x"})
    tampered = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    for cookie in (forged, tampered, "garbage"):
        fresh = client(settings, users)
        fresh.cookies.set(COOKIE, cookie)
        resp = fresh.get(page)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/connexion"), cookie

    short = client(settings, users, session_hours=3 / 3600)  # three seconds
    login(short, "user-a")
    assert short.get(page).status_code == 200
    time.sleep(4.5)
    resp = short.get(page)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/connexion")

    assert users.remove("user-a")
    resp = c.get(page)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/connexion")


def test_an_empty_or_short_signing_key_is_never_used(settings: Settings, users: UserStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes ``TECHNE_CONSOLE_SECRET=${TECHNE_CONSOLE_SECRET:-}``: an .env without it (or
    env.example copied as is) gives an empty value, which must mean "unset" (a random key kept in
    the data dir), never an empty HMAC key anyone can sign an operator's session with."""
    monkeypatch.setenv("TECHNE_CONSOLE_SECRET", "")
    console = ConsoleSettings()
    assert console.secret is None
    c = TestClient(create_app(settings, console, users), follow_redirects=False)
    for key in (b"", b" "):
        c.cookies.set(COOKIE, URLSafeTimedSerializer(key, salt=SALT).dumps({"u": "ops", "c": "x"}))
        resp = c.get("/lieux")
        assert resp.status_code == 303 and resp.headers["location"].startswith("/connexion"), key
    key_file = settings.data_dir / "console" / "secret"
    assert len(key_file.read_bytes().strip()) >= 32 and key_file.stat().st_mode & 0o077 == 0

    monkeypatch.setenv("TECHNE_CONSOLE_SECRET", "short")
    with pytest.raises(ValueError, match="TECHNE_CONSOLE_SECRET: at least 32"):
        ConsoleSettings()
    key_file.write_text("")  # a key file left empty (by hand, or a crash of an older version)
    monkeypatch.delenv("TECHNE_CONSOLE_SECRET")
    with pytest.raises(ConfigError, match="shorter than 32"):
        create_app(settings, ConsoleSettings(), users)


def test_every_form_without_its_csrf_token_is_refused(settings: Settings, users: UserStore) -> None:
    mine = uploads.save(settings, A, "ventes.csv", b"x;y\r\n", "billetterie-fr", "user-a")
    anonymous = client(settings, users)
    for data in ({"username": "user-a", "password": PASSWORD}, {"csrf": "forged", "username": "user-a",
                                                                 "password": PASSWORD}):
        assert anonymous.post("/connexion", data=data).status_code == 403
    c = client(settings, users)
    login(c, "user-a")
    posts = [p for m, p in venue_routes(c) if m == "POST"] + ["/deconnexion"]
    assert len(posts) >= 3
    for template in posts:
        path = template.format(venue=A, upload_id=mine)
        for data in ({}, {"csrf": "not-the-token"}):
            resp = c.post(path, data=data, files={"file": ("a.csv", b"x;y\r\n", "text/csv")}
                          if template.endswith("/import") else None)
            assert resp.status_code == 403, (path, data)
            assert "Jeton de sécurité" in resp.text
    assert c.get(f"/lieux/{A}/import").status_code == 200  # still signed in: no logout without the token
    assert uploads.recent(settings, A) and all(u["result"] is None for u in uploads.recent(settings, A))
    assert len(uploads.recent(settings, A)) == 1  # no upload accepted without the token


def test_a_body_over_the_upload_limit_is_refused_before_any_sign_in(settings: Settings, users: UserStore) -> None:
    """Starlette spools a multipart file part to disk without a bound, and the login form is parsed
    before anyone signs in: the console reads at most max_upload_bytes + FORM_OVERHEAD of a body,
    whether its length is announced or streamed."""
    c = client(settings, users, max_upload_bytes=2048)
    csrf = csrf_of(c)
    big = b"x" * (2048 + 200 * 1024)
    resp = c.post("/connexion", data={"csrf": csrf}, files={"file": ("big.csv", big, "text/csv")})
    assert resp.status_code == 413, resp.status_code

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what is read
        boundary = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n"
        yield boundary
        for _ in range(100):
            yield b"x" * 4096
        yield b"\r\n--b--\r\n"

    resp = c.post("/connexion", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert resp.status_code == 413, resp.status_code
    csrf = login(c, "user-a")
    resp = c.post(f"/lieux/{A}/import", data={"csrf": csrf, "profile": "auto"},
                  files={"file": ("big.csv", big, "text/csv")})
    assert resp.status_code == 413 and "trop volumineux" in resp.text
    small = c.post(f"/lieux/{A}/import", data={"csrf": csrf, "profile": "auto"},
                   files={"file": ("small.csv", b"x" * 2100, "text/csv")})
    assert small.status_code == 413 and "trop volumineux" in small.text  # over the limit, within the overhead
    export = ("N° commande;Date de commande;N° client;E-mail;Code postal;Spectacle;Code séance;Date de séance;Salle;"
              "Genre;Tarif;Canal;Nb places;Montant TTC\r\n"
              "C-1;01/12/2026 10:00;;lea@exemple.fr;92330;Le Misanthrope;MIS-1;28/12/2026 20:30;Grande salle;"
              "Théâtre;Plein;Internet;2;45,00\r\n")
    ok = c.post(f"/lieux/{A}/import", data={"csrf": csrf, "profile": "billetterie-fr"},
                files={"file": ("ok.csv", export.encode("cp1252"), "text/csv")})
    assert ok.status_code == 303 and ok.headers["location"].startswith(f"/lieux/{A}/import/")  # within: read as ever


def test_login_is_rate_limited_per_address_and_per_name(settings: Settings, users: UserStore) -> None:
    c = client(settings, users, login_attempts=3, login_window_s=600)
    token = csrf_of(c)
    for _ in range(3):
        resp = c.post("/connexion", data={"csrf": token, "username": "user-a", "password": "wrong-password"})
        assert resp.status_code == 401 and "incorrect" in resp.text
    right = c.post("/connexion", data={"csrf": token, "username": "user-a", "password": PASSWORD})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert "Trop de tentatives" in right.text and COOKIE in c.cookies
    other = c.post("/connexion", data={"csrf": token, "username": "user-b", "password": PASSWORD})
    assert other.status_code == 303  # a colleague at the same address still signs in
    for i in range(3 * 4 - 3):  # the address's own budget: four times a name's
        c.post("/connexion", data={"csrf": csrf_of(c), "username": f"guess-{i}", "password": "wrong-password"})
    blocked = c.post("/connexion", data={"csrf": csrf_of(c), "username": "ops", "password": PASSWORD})
    assert blocked.status_code == 429  # every name, from this address


def test_limiter_window_and_success_reset() -> None:
    now = [0.0]
    limiter = LoginLimiter(2, 60, clock=lambda: now[0])
    limiter.failed("ip:1", "user:a")
    assert limiter.retry_after("ip:1", "user:a") == 0
    limiter.failed("ip:1", "user:a")
    assert limiter.retry_after("ip:1", "user:a") == pytest.approx(60)
    assert limiter.retry_after("ip:1") == 0  # an address may fail 4 x 2 times
    for t in range(6):
        now[0] = t + 1
        limiter.failed("ip:1")
    assert limiter.retry_after("ip:1") == pytest.approx(60 - 6)  # until the oldest of the 8 leaves
    now[0] = 0
    now[0] = 30
    assert limiter.retry_after("ip:2", "user:a") == pytest.approx(30)  # per name, from another address
    now[0] = 61
    assert limiter.retry_after("ip:1", "user:a") == 0
    limiter.failed("user:b")
    limiter.succeeded("user:b")
    limiter.failed("user:b")
    assert limiter.retry_after("user:b") == 0


def test_limiter_memory_holds_only_the_failures_of_one_window() -> None:
    """Each refused login used to leave an entry per login name tried, for ever (asking whether a
    name may try created one too): a client cycling through names grew the console's memory
    without bound. Only failures within the window are kept."""
    now = [0.0]
    limiter = LoginLimiter(2, 60, clock=lambda: now[0])
    for i in range(1000):
        assert limiter.retry_after("ip:1", f"user:{i}") >= 0
    assert len(limiter._failures) == 0
    for i in range(3000):
        limiter.failed("ip:1", f"user:{i}")
    assert len(limiter._failures) == 3001 and limiter.retry_after("ip:1") > 0
    now[0] = 61  # the window passed: those names are never tried again
    for i in range(3000, 6000):
        limiter.failed(f"user:{i}")
    assert len(limiter._failures) <= 3000 + 1  # the first 3,001 keys were dropped on the way
    assert limiter.retry_after("user:5999") == 0 and limiter.retry_after("ip:1") == 0


def test_passwords_are_argon2_and_links_work_once(settings: Settings, users: UserStore) -> None:
    import sqlite3

    rows = sqlite3.connect(settings.data_dir / "console" / "console.sqlite").execute(
        "SELECT username, password_hash FROM users").fetchall()
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for _, h in rows)
    assert users.verify("user-a", PASSWORD) is not None and users.verify("user-a", PASSWORD + "x") is None
    no_password = users.add("sans-mot", venue=A)
    assert users.verify(no_password.username, "") is None
    token = users.issue_link("sans-mot")
    c = client(settings, users)
    assert c.get(f"/connexion/lien/{token}").headers["location"] == f"/lieux/{A}/partage"
    assert c.get(f"/lieux/{A}/import").status_code == 200
    again = client(settings, users)
    assert again.get(f"/connexion/lien/{token}").status_code == 401
    expired = users.issue_link("sans-mot", ttl_s=-1)
    assert again.get(f"/connexion/lien/{expired}").status_code == 401


def test_cli_never_sets_a_default_password(settings: Settings) -> None:
    env = {**os.environ, "TECHNE_DATA_DIR": str(settings.data_dir)}
    run = subprocess.run([sys.executable, "-m", "techne.cli", "console", "user", "add", "quelqu-un", "--venue", A],
                         env=env, input="", capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert run.returncode != 0  # no password typed: no user
    short = subprocess.run([sys.executable, "-m", "techne.cli", "console", "user", "add", "quelqu-un", "--venue", A,
                            "--password-stdin"], env=env, input="court\n", capture_output=True, text=True,
                           timeout=60, cwd=REPO, check=False)
    assert short.returncode == 2 and "shorter" in short.stderr
    listed = subprocess.run([sys.executable, "-m", "techne.cli", "console", "user", "list"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=REPO, check=True)
    assert "quelqu-un" not in listed.stdout


def test_the_demo_login_is_a_one_time_link_for_one_venue(settings: Settings, users: UserStore) -> None:
    from techne.demo import CONSOLE_VENUE, console_login

    link = console_login(settings.data_dir, CONSOLE_VENUE, "http://127.0.0.1:1")
    assert link.startswith("http://127.0.0.1:1/connexion/lien/")
    user = users.get(f"equipe-{CONSOLE_VENUE}")
    assert user is not None and user.venue == CONSOLE_VENUE and not user.is_operator
    assert users.verify(user.username, "") is None  # no password at all
    c = client(settings, users)
    path = link.removeprefix("http://127.0.0.1:1")
    assert c.get(path).headers["location"] == f"/lieux/{CONSOLE_VENUE}/partage"
    assert client(settings, users).get(path).status_code == 401  # once only
    assert console_login(settings.data_dir, CONSOLE_VENUE, "http://x") != link  # a second run: a new link


def test_after_sign_in_only_a_page_of_ones_own_venue_is_followed(settings: Settings, users: UserStore) -> None:
    home = f"/lieux/{A}/partage"
    for asked, landed in ((f"/lieux/{A}/sources", f"/lieux/{A}/sources"), (f"/lieux/{B}/sources", home),
                          ("https://evil.example/", home), ("//evil.example", home)):
        c = client(settings, users)
        resp = c.post("/connexion", data={"csrf": csrf_of(c), "username": "user-a", "password": PASSWORD,
                                          "suite": asked})
        assert resp.status_code == 303 and resp.headers["location"] == landed, asked


def test_cli_refuses_an_unknown_venue_before_asking_for_a_password(settings: Settings) -> None:
    env = {**os.environ, "TECHNE_DATA_DIR": str(settings.data_dir)}
    run = subprocess.run([sys.executable, "-m", "techne.cli", "console", "user", "add", "quelqu-un", "--venue",
                          "nulle-part"], env=env, input="", capture_output=True, text=True, timeout=60, cwd=REPO,
                         check=False)
    assert run.returncode == 2 and "unknown venue 'nulle-part'" in run.stderr
    assert "password" not in run.stdout + run.stderr.split("unknown venue")[0]  # never prompted


def test_console_refuses_to_start_without_the_subject_key(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TECHNE_SUBJECT_KEY"}
    env["TECHNE_DATA_DIR"] = str(settings.data_dir)
    run = subprocess.run([sys.executable, "-m", "techne.cli", "console", "--port", "1"], env=env,
                         capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert run.returncode == 2 and "TECHNE_SUBJECT_KEY is required" in run.stderr  # not a 500 on the links page
