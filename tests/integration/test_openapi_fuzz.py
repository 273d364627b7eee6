"""A bounded schemathesis run against the gateway's published spec, on the real broker: whatever
it generates (valid and invalid events, batches, vendor payloads, tracking requests), the
gateway never answers 5xx. Requests are signed the way each door expects, so generated bodies
get past authentication and exercise validation and delivery, not only the 401s."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from core.settings import DEFAULT_VENUES
from core.venues import load_venues
from producers.gateway.openapi import spec
from producers.gateway.signatures import sign
from tests.conftest import Bus
from tests.producer_env import HELLOASSO_KEY, SECUTIX_API_KEY

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 15  # per operation
STATUSES: Counter[str] = Counter()  # operation + status -> count (printed with -s)


def teardown_module() -> None:
    print("schemathesis answers:", dict(sorted(STATUSES.items())))


# The spec as the gateway publishes it (test_gateway_batch checks /openapi.json serves this).
# Bounded: generated examples only (the exhaustive "coverage" phase takes minutes on 2 CPUs).
CONFIG = SchemathesisConfig.from_str("[phases]\ncoverage.enabled = false\nstateful.enabled = false\n")
schema = schemathesis.openapi.from_dict(spec(tuple(sorted(load_venues(DEFAULT_VENUES)))), config=CONFIG)


def _body(kwargs: dict[str, Any]) -> bytes | None:
    if "json" in kwargs:
        return json.dumps(kwargs.pop("json")).encode()
    data = kwargs.pop("data", None)
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    if isinstance(data, dict):
        return "&".join(f"{k}={v}" for k, v in data.items()).encode()
    return None


def _utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_error(case: Any, bus: Bus) -> None:
    kwargs = case.as_transport_kwargs(base_url=bus.gateway_url)
    body = _body(kwargs) or b""
    headers = {k: str(v) for k, v in (kwargs.pop("headers", None) or {}).items()}
    venue = (case.path_parameters or {}).get("venue_id")
    secrets = json.loads(bus.env["TECHNE_VENUE_SECRETS"])
    if venue in secrets and _utf8(body):  # the reference signer signs text
        headers.update(sign(body, secret=secrets[venue][0], msg_id=f"msg_{uuid.uuid4().hex}", timestamp=time.time()))
    headers["x-ha-signature"] = hmac.new(HELLOASSO_KEY.encode(), body, hashlib.sha256).hexdigest()
    headers["x-api-key"] = SECUTIX_API_KEY
    response = httpx.request(kwargs.pop("method"), kwargs.pop("url"), params=kwargs.pop("params", None),
                             headers=headers, content=body, timeout=30)
    STATUSES[f"{case.operation.label} {response.status_code}"] += 1
    assert response.status_code < 500, (response.status_code, response.text[:500])
    case.validate_response(response, checks=[not_a_server_error])
