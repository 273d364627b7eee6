from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.identity import normalize_phone
from streams.steps.generalize import age_band, departement, device_class, ip_prefix


@pytest.mark.parametrize(("raw", "e164"), [
    ("06 12 34 56 78", "+33612345678"), ("+33 6 12 34 56 78", "+33612345678"), ("0033612345678", "+33612345678"),
    ("01.42.68.53.00", "+33142685300"), ("+1 650 253 0000", "+16502530000"), ("12", None), ("n/a", None), ("", None),
])
def test_phone_e164(raw: str, e164: str | None) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(("code", "dep"), [
    ("69003", "69"), ("75011", "75"), ("20090", "2A"), ("20200", "2B"), ("97400", "974"), ("01000", "01"),
    ("6900", None), ("ABCDE", None), (None, None), ("00100", None),
])
def test_departement(code: str | None, dep: str | None) -> None:
    assert departement(code) == dep


def test_age_band_on_event_date() -> None:
    assert age_band(date(2000, 6, 15), date(2026, 6, 14)) == "25-34"
    assert age_band(date(2008, 6, 15), date(2026, 6, 14)) == "0-17"
    assert age_band(date(2008, 6, 15), date(2026, 6, 15)) == "18-24"
    assert age_band(date(2030, 1, 1), date(2026, 1, 1)) is None


def test_ip_prefix() -> None:
    assert ip_prefix("192.168.14.77") == "192.168.14.0/24"
    assert ip_prefix("2a01:e0a:1:2:3:4:5:6") == "2a01:e0a:1::/48"
    assert ip_prefix("999.1.1.1") is None


@pytest.mark.parametrize(("ua", "cls"), [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "mobile"),
    ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X)", "tablet"),
    ("Mozilla/5.0 (Linux; Android 14; SM-X200) AppleWebKit/537.36 Safari/537.36", "tablet"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36", "mobile"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36", "desktop"),
    ("Googlebot/2.1 (+http://www.google.com/bot.html)", "bot"), ("", None), ("Lynx/2.8", "other"),
])
def test_device_class(ua: str, cls: str | None) -> None:
    assert device_class(ua) == cls


@given(st.text(max_size=40))
def test_generalizers_only_ever_return_their_coarse_forms(text: str) -> None:
    import re

    assert departement(text) is None or re.fullmatch(r"\d{2}|2A|2B|9[78]\d", departement(text) or "")
    assert ip_prefix(text) is None or "/" in (ip_prefix(text) or "")
    assert device_class(text) in (None, "mobile", "tablet", "desktop", "bot", "other")
    assert normalize_phone(text) is None or re.fullmatch(r"\+\d{6,15}", normalize_phone(text) or "")
