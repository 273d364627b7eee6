import time

import pytest
from pydantic import SecretStr

from producers.gateway.signatures import SignatureRejected, sign, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


def test_valid_and_rotated_secrets() -> None:
    body = b'{"a": 1}'
    headers = sign(body, secret=SECRET, msg_id="msg_1", timestamp=time.time())
    verify(body, headers, [SecretStr(SECRET)])
    verify(body, headers, [SecretStr(OTHER), SecretStr(SECRET)])  # rotation: either active secret


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda b, h: (b + b" ", h), "no_match"),
    (lambda b, h: (b, {**h, "webhook-timestamp": str(int(time.time()) - 600)}), "too_old"),
    (lambda b, h: (b, {**h, "webhook-timestamp": str(int(time.time()) + 600)}), "too_new"),
    (lambda b, h: (b, {**h, "webhook-timestamp": "yesterday"}), "bad_timestamp"),
    (lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-id"}), "missing_headers"),
    (lambda b, h: (b, {**h, "webhook-signature": "garbage"}), "malformed"),
    (lambda b, h: (b, {**h, "webhook-signature": "v1,not*base64"}), "malformed"),
])
def test_rejections(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    body = b'{"a": 1}'
    b2, h2 = mutate(body, sign(body, secret=SECRET, msg_id="msg_1", timestamp=time.time()))
    with pytest.raises(SignatureRejected) as info:
        verify(b2, h2, [SecretStr(SECRET)])
    assert info.value.code == reason  # our own code, whatever the library's wording


def test_other_venue_secret_rejected() -> None:
    body = b"{}"
    with pytest.raises(SignatureRejected):
        verify(body, sign(body, secret=OTHER, msg_id="m", timestamp=time.time()), [SecretStr(SECRET)])


@pytest.mark.parametrize("others", ["v1,not*base64", "v1,", "v1a,c2lnbmF0dXJl", "v2,???", "garbage", "v1,AAAA"])
def test_several_signatures_in_one_header_any_right_one_is_enough(others: str) -> None:
    """Standard Webhooks: the header is a space-delimited list (senders rotating their secret sign
    with both); an entry we cannot read beside the right one does not refuse the delivery."""
    body = b'{"a": 1}'
    headers = sign(body, secret=SECRET, msg_id="msg_1", timestamp=time.time())
    for listed in (f"{others} {headers['webhook-signature']}", f"{headers['webhook-signature']} {others}"):
        verify(body, {**headers, "webhook-signature": listed}, [SecretStr(SECRET)])
    with pytest.raises(SignatureRejected) as info:
        verify(body, {**headers, "webhook-signature": f"{others} {others}"}, [SecretStr(SECRET)])
    assert info.value.code in ("malformed", "no_match")
