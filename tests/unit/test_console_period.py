"""The console's period (``?depuis=&jusqu=``) as a user may type or edit it in the address bar:
garbage is a 400 page, a reversed period is read in order, and dates at the ends of the calendar
(``0001-01-01`` to ``9999-12-31``) read everything instead of failing the page (500)."""

from __future__ import annotations

from datetime import date

from core.settings import Settings
from techne.console.users import UserStore
from techne.console.web import FIRST_DAY, LAST_DAY
from tests.unit.test_console_security import A, client, login, settings, users  # noqa: F401

PAGES = ["partage", "partage/dpo", "sources", "consentements"]


def test_a_period_at_the_ends_of_the_calendar_reads_everything(settings: Settings, users: UserStore) -> None:  # noqa: F811
    c = client(settings, users)
    login(c, "user-a")
    for page in PAGES:
        for query in ["?depuis=0001-01-01&jusqu=9999-12-31", "?jusqu=9999-12-31",
                      "?depuis=9999-12-31&jusqu=0001-01-01"]:
            resp = c.get(f"/lieux/{A}/{page}{query}")
            assert resp.status_code == 200, (page, query, resp.text[:300])
    for query in ["?depuis=garbage", "?jusqu=2026-02-30", "?depuis=%00"]:  # a malformed period: a 400 page
        assert c.get(f"/lieux/{A}/partage{query}").status_code == 400


def test_the_period_is_kept_within_the_stores_calendar() -> None:
    assert date(1970, 1, 1) >= FIRST_DAY
    assert date(2100, 1, 1) <= LAST_DAY
