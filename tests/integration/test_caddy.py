"""deploy/caddy/Caddyfile, run by a real Caddy (Debian's package) in front of the session's gateway.

The file as committed; only its documented knobs are set: the HTTPS port (a free one instead of
443), the upstreams (the local gateway instead of the compose service names) and ``TECHNE_TLS=
internal`` (Caddy's local CA; nothing is installed in the system's trust store). Over TLS, the
public host answers the gateway's health check and its API, while ``/metrics`` and ``/docs``
answer 404 (the gateway itself serves both: the proxy hides them), and plain HTTP on the TLS
port gets no gateway answer.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from techne.local import free_port
from tests.conftest import Bus

pytestmark = pytest.mark.integration
CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "caddy" / "Caddyfile"


@pytest.fixture(scope="module")
def proxy(bus: Bus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    caddy = shutil.which("caddy")
    if caddy is None:
        assert not os.environ.get("CI"), "caddy missing in CI: deploy/local/prereqs.sh installs it"
        pytest.skip("caddy missing: deploy/local/prereqs.sh installs Debian's caddy (as root)")
    home = tmp_path_factory.mktemp("caddy")
    port = free_port()
    upstream = bus.gateway_url.removeprefix("http://")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "TECHNE_PUBLIC_HOST": "localhost",
           "TECHNE_REGISTRY_HOST": "registry.localhost", "TECHNE_TLS": "internal", "TECHNE_HTTPS_PORT": str(port),
           "TECHNE_GATEWAY_UPSTREAM": upstream, "TECHNE_REGISTRY_UPSTREAM": upstream}
    log = (home / "caddy.log").open("wb")
    proc = subprocess.Popen([caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"https://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (home / "caddy.log").read_text()
            try:
                httpx.get(f"{url}/healthz", verify=False, timeout=2)  # noqa: S501 -- Caddy's local CA
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (home / "caddy.log").read_text()[-3000:]
                time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_public_port_serves_the_gateway_over_tls_but_not_metrics_or_docs(proxy: str, bus: Bus) -> None:
    with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 -- Caddy's local CA
        health = client.get(f"{proxy}/healthz")
        assert health.status_code == 200, health.text
        assert health.url.scheme == "https" and health.http_version in {"HTTP/1.1", "HTTP/2"}
        # an unsigned webhook reaches the gateway and is refused by it (not by the proxy)
        refused = client.post(f"{proxy}/v1/venues/opera-lyon/events", content=b"{}",
                              headers={"content-type": "application/json"})
        assert refused.status_code in {400, 401, 404}, refused.text
        direct = httpx.post(f"{bus.gateway_url}/v1/venues/opera-lyon/events", content=b"{}",
                            headers={"content-type": "application/json"}, timeout=10)
        assert refused.status_code == direct.status_code
        for path in ("/metrics", "/metrics/", "/docs", "/openapi.json"):
            assert client.get(f"{proxy}{path}").status_code == 404, path
    for path in ("/metrics/", "/docs"):  # the gateway serves them: the proxy is what hides them
        assert httpx.get(f"{bus.gateway_url}{path}", timeout=10).status_code == 200, path


def test_tls_port_speaks_only_tls(proxy: str) -> None:
    plain = proxy.replace("https://", "http://")
    try:
        answer = httpx.get(f"{plain}/healthz", timeout=5)
    except httpx.HTTPError:
        return  # connection refused/reset: nothing served in clear
    assert answer.status_code == 400 and "ok" not in answer.text.lower()


def test_certificate_is_issued_for_the_public_host(proxy: str) -> None:
    port = int(proxy.rsplit(":", 1)[1])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
        assert der and tls.version() in {"TLSv1.2", "TLSv1.3"}
    cert = x509.load_der_x509_certificate(der)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["localhost"]
