"""The preference centre in headless Chromium (Debian's chromium, driven by Playwright) against the
real gateway and broker: a person reached through a signed link sees the named partners per
purpose, withdraws and grants with buttons of the same size, and each choice is a consent event
on the venue's raw topic; a forged or expired link, or a form without its CSRF token, is refused
and records nothing. Screenshots go to tests/artifacts/preference-centre/ (not committed)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from producers.gateway.preferences import preference_link
from tests.conftest import Bus
from tests.integration.adapters_helpers import records_with_source
from tests.support.kafka import raw_offsets

pytestmark = pytest.mark.integration
VENUE = "chaillot"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "preference-centre"
T = TypeVar("T")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def link(bus: Bus, email: str, issued_at: datetime | None = None) -> str:
    return preference_link(bus.env["TECHNE_SUBJECT_KEY"].encode(), VENUE, email, bus.gateway_url, issued_at)


def off_loop(fn: Callable[[], T]) -> T:
    """Run ``fn`` (which uses asyncio.run) outside Playwright's running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def choices(bus: Bus, email: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    return [(r, h) for r, h in off_loop(lambda: records_with_source(bus, VENUE, "preference-centre"))
            if r["subject"].get("email") == email]


def offsets(bus: Bus) -> dict[str, int]:
    return off_loop(lambda: raw_offsets(bus))


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_person_withdraws_and_grants_each_purpose(bus: Bus, browser: Browser) -> None:
    email = f"spectatrice.{uuid.uuid4().hex[:8]}@exemple.fr"
    page = browser.new_page()
    response = page.goto(link(bus, email))
    assert response is not None and response.status == 200
    assert "Chaillot" in page.inner_text("h1")
    analytics, marketing = page.locator("#purpose-cross_venue_analytics"), page.locator("#purpose-marketing")
    assert "Observatoire des publics" in analytics.inner_text()
    assert "Réseau danse" in marketing.inner_text() and "Observatoire" not in marketing.inner_text()
    accept = marketing.get_by_role("button", name="J'accepte")
    refuse = marketing.get_by_role("button", name="Je refuse")
    a, r = accept.bounding_box(), refuse.bounding_box()
    assert a and r and (round(a["width"]), round(a["height"])) == (round(r["width"]), round(r["height"]))
    shot(page, "1-page")

    refuse.click()
    page.wait_for_selector("#done")
    assert "vous refusez" in page.inner_text("#done")
    shot(page, "2-withdrawn")
    page.locator("#purpose-cross_venue_analytics").get_by_role("button", name="J'accepte").click()
    page.wait_for_selector("#done")
    assert "vous acceptez" in page.inner_text("#done")
    page.close()

    got = choices(bus, email)
    assert sorted((r["event_type"], r["purpose"], tuple(r["recipients"])) for r, _ in got) == [
        ("consent.granted", "cross_venue_analytics", ("observatoire",)),
        ("consent.withdrawn", "marketing", ("reseau-danse",))]
    assert {(r["collection_method"], r["recipient_list_version"], h["auth"]) for r, h in got} == {
        ("preference_center", "2026-09", "preference-centre:signed-link")}
    assert email not in link(bus, email)  # the address is not readable from the link


@pytest.mark.parametrize("kind", ["forged", "expired"])
def test_forged_or_expired_link_is_refused_and_records_nothing(bus: Bus, browser: Browser, kind: str) -> None:
    email = f"x.{uuid.uuid4().hex[:8]}@exemple.fr"
    if kind == "forged":
        good = link(bus, email)
        url = good[:-12] + ("A" if good[-12] != "A" else "B") + good[-11:]
    else:
        url = link(bus, email, issued_at=datetime.now(UTC) - timedelta(days=31))
    before = offsets(bus)
    page = browser.new_page()
    response = page.goto(url)
    assert response is not None and response.status == 403
    text = page.inner_text("#refused")
    assert ("expiré" in text) if kind == "expired" else ("pas valide" in text)
    assert page.locator("button").count() == 0
    shot(page, f"3-{kind}")
    page.close()
    refused_post = httpx.post(url, data={"purpose": "marketing", "choice": "grant", "csrf": "x"})
    assert refused_post.status_code == 403
    assert offsets(bus) == before and choices(bus, email) == []


def test_form_without_its_csrf_token_or_from_another_site_is_refused(bus: Bus, browser: Browser) -> None:
    email = f"y.{uuid.uuid4().hex[:8]}@exemple.fr"
    url = link(bus, email)
    page = browser.new_page()
    page.goto(url)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    page.close()
    before = offsets(bus)
    assert httpx.post(url, data={"purpose": "marketing", "choice": "grant"}).status_code == 403
    assert httpx.post(url, data={"purpose": "marketing", "choice": "grant", "csrf": csrf or ""},
                      headers={"origin": "https://evil.example"}).status_code == 403
    other = link(bus, f"z.{uuid.uuid4().hex[:8]}@exemple.fr")  # a token from another person's page
    assert httpx.post(other, data={"purpose": "marketing", "choice": "grant", "csrf": csrf or ""}).status_code == 403
    assert httpx.post(url, data={"purpose": "spying", "choice": "grant", "csrf": csrf or ""}).status_code == 400
    assert offsets(bus) == before and choices(bus, email) == []
    ok = httpx.post(url, data={"purpose": "marketing", "choice": "grant", "csrf": csrf or ""})
    assert ok.status_code == 303 and len(choices(bus, email)) == 1


def test_cli_prints_a_working_link(bus: Bus) -> None:
    proc = subprocess.run([sys.executable, "-m", "techne.cli", "consent", "link", "--venue", VENUE, "--email",
                           "cli.test@exemple.fr", "--base-url", bus.gateway_url], env={**os.environ, **bus.env},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    page = httpx.get(proc.stdout.strip(), timeout=30)
    assert page.status_code == 200 and "Chaillot" in page.text and "cli.test" not in proc.stdout
