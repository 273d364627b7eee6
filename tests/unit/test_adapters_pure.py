"""Adapter authentication helpers and payload mappings (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from pydantic import SecretStr

from producers.adapters import PUSH, AuthRejected, PayloadRejected
from producers.adapters.base import check_basic_or_api_key, ip_allowed
from producers.adapters.billetweb import map_attendee
from producers.matomo import parse_request, to_event

KEYS = [SecretStr("user:old-pass"), SecretStr("api-key-1")]


def test_basic_or_api_key() -> None:
    basic = "Basic " + base64.b64encode(b"user:old-pass").decode()
    assert check_basic_or_api_key({"authorization": basic}, KEYS, "x-api-key") == "basic"
    assert check_basic_or_api_key({"x-api-key": "api-key-1"}, KEYS, "x-api-key") == "api-key:x-api-key"
    for headers in ({"x-api-key": "nope"}, {"authorization": "Basic !!"}, {}):
        with pytest.raises(AuthRejected) as err:
            check_basic_or_api_key(headers, KEYS, "x-api-key")
        assert "old-pass" not in str(err.value) and "api-key-1" not in str(err.value)
    with pytest.raises(AuthRejected, match="no credentials"):
        check_basic_or_api_key({"x-api-key": "api-key-1"}, [], "x-api-key")


def test_ip_allow_list() -> None:
    assert ip_allowed("203.0.113.9", [])
    assert ip_allowed("203.0.113.9", ["203.0.113.0/24"])
    assert not ip_allowed("198.51.100.1", ["203.0.113.0/24"])
    assert not ip_allowed(None, ["203.0.113.0/24"]) and not ip_allowed("garbage", ["203.0.113.0/24"])


def test_helloasso_signature_with_rotation() -> None:
    body = b'{"eventType": "Form", "data": {}}'
    sig = hmac.new(b"new-key", body, hashlib.sha256).hexdigest()
    ha = PUSH["helloasso"]
    assert ha.authenticate(body, {"x-ha-signature": sig.upper()}, [SecretStr("old"), SecretStr("new-key")]) \
        == "hmac-sha256:x-ha-signature"
    with pytest.raises(AuthRejected):
        ha.authenticate(body + b" ", {"x-ha-signature": sig}, [SecretStr("new-key")])
    assert ha.events(body) == []
    with pytest.raises(PayloadRejected):
        ha.events(b"[1]")


def test_billetweb_keys_name_object_and_state() -> None:
    att = {"id": "9", "barcode": "B9", "used": "1", "used_date": "2026-12-05 14:48:10", "email": "a@b.fr",
           "ticket": "Tarif réduit", "price": "8.50", "order_id": "1", "order_date": "2026-11-04 09:12:44"}
    issued, scanned = map_attendee(att, {"id": "7", "name": "Show", "start": "2026-12-05 15:00:00"})
    assert (issued.key, scanned.key) == ("attendee:9:issued", "attendee:9:scanned")
    assert issued.payload["price_minor"] == 850 and issued.payload["tariff"] == "reduit"
    assert issued.payload["performance_at"] == "2026-12-05T15:00:00+01:00"
    assert len(map_attendee({**att, "used": "0"}, {"id": "7"})) == 1


def test_matomo_mapping() -> None:
    params = parse_request("?idsite=s&rec=1&_id=abcdef0123456789&r=123456&pv_id=Xy12Zz&url=https%3A%2F%2Fx.fr%2F"
                           "&action_name=Accueil")
    payload, key = to_event(params) or ({}, "")
    assert payload["type"] == "web.page_viewed" and payload["page_title"] == "Accueil"
    assert payload["customer"] == {"visitor_id": "abcdef0123456789"}
    assert key.endswith(":pageview") and key == (to_event(dict(reversed(params.items()))) or ({}, ""))[1]
    assert to_event({**params, "ping": "1"}) is None and to_event({**params, "rec": "0"}) is None
    video, _ = to_event({**params, "e_c": "Video", "e_a": "play", "e_n": "teaser"}) or ({}, "")
    assert (video["type"], video["content_type"], video["content_id"]) == ("web.content_interacted", "video",
                                                                           "teaser")
    assert json.dumps(video)  # JSON-ready as it is posted to prepare()


def test_weezevent_reads_paris_times_and_prices_like_billetweb() -> None:
    from producers.adapters.weezevent import map_participant

    p = {"id_participant": 5, "create_date": "2026-12-05 14:48:10", "last_update": "2026-12-06 09:00:00",
         "price": "8.50", "deleted": 1, "ticket_name": "Tarif réduit", "owner": {"email": "a@b.fr"}}
    issued, refunded = map_participant(p, {"id": 7, "date": {"start": "2026-12-05 20:00:00"}})
    assert issued.payload["occurred_at"] == "2026-12-05T14:48:10+01:00"
    assert issued.payload["performance_at"] == "2026-12-05T20:00:00+01:00"
    assert (issued.payload["price_minor"], refunded.payload["amount_minor"]) == (850, 850)
    assert refunded.payload["occurred_at"] == "2026-12-06T09:00:00+01:00"


def test_helloasso_payer_country_in_alpha_3_is_kept() -> None:
    """HelloAsso's API gives the payer's country in ISO 3166 alpha-3 ("FRA"): it was dropped."""
    body = json.dumps({"eventType": "Order", "data": {
        "id": 9, "date": "2026-11-20T18:00:00+01:00", "amount": {"total": 2500},
        "payer": {"email": "a@b.fr", "country": "FRA", "zipCode": "44000"}}}).encode()
    [event] = PUSH["helloasso"].events(body)
    assert event.payload["customer"]["country_code"] == "FR"
    unknown = json.dumps({"eventType": "Order", "data": {
        "id": 10, "date": "2026-11-20T18:00:00+01:00", "amount": {"total": 2500},
        "payer": {"email": "a@b.fr", "country": "XYZ"}}}).encode()
    assert "country_code" not in PUSH["helloasso"].events(unknown)[0].payload["customer"]


@pytest.mark.parametrize(("written", "code"), [("FR", "FR"), ("fr", "FR"), (" FRA ", "FR"), ("250", "FR"),
                                               ("France", "FR"), ("BEL", "BE"), ("Belgium", "BE"),
                                               ("ZZ", None), ("Atlantis", None), ("", None)])
def test_country_codes_as_venues_write_them(written: str, code: str | None) -> None:
    from pydantic import ValidationError

    from schemas.customer import Customer, country_code

    assert country_code(written) == code
    if code is not None:
        assert Customer(email="a@b.fr", country_code=written).country_code == code
    elif written:
        with pytest.raises(ValidationError, match="not an ISO 3166 country"):
            Customer(email="a@b.fr", country_code=written)
