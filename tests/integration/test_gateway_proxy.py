"""The gateway behind the TLS proxy: a source's IP allow-list checks the venue's address.

A real ``techne gateway`` process: from a trusted proxy (``TECHNE_GATEWAY_TRUSTED_PROXIES``,
loopback by default) the last ``X-Forwarded-For`` hop is the client the allow-list checks; from
any other peer the header is ignored, so a venue cannot forge its way past the list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from techne.stack import Stack
from tests.conftest import Bus

pytestmark = pytest.mark.integration
VENUE, SOURCE = "opera-lyon", "secutix"
ALLOWED = {VENUE: {SOURCE: ["203.0.113.0/24"]}}


@pytest.fixture(params=["127.0.0.1", "10.0.0.1"], ids=["proxy-trusted", "peer-not-a-proxy"])
def gateway(bus: Bus, request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    env = {**bus.env, "TECHNE_SOURCE_ALLOWED_IPS": json.dumps(ALLOWED),
           "TECHNE_GATEWAY_TRUSTED_PROXIES": request.param}
    own = Stack(env, bus.stack.log_dir / f"proxy-{request.node.callspec.id}")
    try:
        yield own.start_gateway(), request.param == "127.0.0.1"
    finally:
        own.stop("gateway")


def post(url: str, forwarded_for: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"} | ({"x-forwarded-for": forwarded_for} if forwarded_for else {})
    return httpx.post(f"{url}/v1/venues/{VENUE}/sources/{SOURCE}", content=b"{}", headers=headers, timeout=10)


def test_allow_list_sees_the_forwarded_client_only_through_a_trusted_proxy(gateway: tuple[str, bool]) -> None:
    url, trusted = gateway
    allowed = post(url, "203.0.113.9")
    if trusted:  # past the allow-list: refused next for its missing credentials
        assert allowed.status_code == 401, allowed.text
    else:  # the header is ignored: the peer (loopback) is outside the list
        assert allowed.status_code == 403 and allowed.json()["error"] == "address_not_allowed", allowed.text
    for forwarded in ("198.51.100.1", None, "203.0.113.9, 198.51.100.1"):  # the last hop is the client
        refused = post(url, forwarded)
        assert refused.status_code == 403, (forwarded, refused.text)
        assert refused.json()["error"] == "address_not_allowed"


def test_listen_port_from_the_settings_when_no_option_is_given(bus: Bus) -> None:
    """``techne gateway`` without --port listens on TECHNE_GATEWAY_PORT (documented in env.example)."""
    from techne.stack import free_port

    port = free_port()
    own = Stack({**bus.env, "TECHNE_GATEWAY_PORT": str(port)}, bus.stack.log_dir / "gateway-port")
    own._spawn("gateway", ["gateway"])
    try:
        deadline = time.monotonic() + 30
        while True:
            own.check()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, own.log_tail("gateway")
            time.sleep(0.2)
    finally:
        own.stop("gateway")
