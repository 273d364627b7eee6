from datetime import date

import pytest

from streams.report import render, report_sql
from techne.withdrawals import latencies

ROWS = [("dropped", "observatoire", "cross_venue_analytics", "ticket.order_placed", "no_record", 182),
        ("shared", "observatoire", "cross_venue_analytics", "ticket.order_placed", "granted", 62)]


def test_render_in_both_languages() -> None:
    fr = render(ROWS, "chaillot", "fr", date(2026, 11, 1))
    en = render(ROWS, "chaillot", "en")
    assert "Ce que partage chaillot (depuis le 01/11/2026)" in fr and "aucun consentement enregistré" in fr
    assert "What chaillot shares" in en and "not shared (no consent)" in en and "62" in en
    assert "aucune décision" in render([], "x", "fr")


def test_report_sql_rejects_injection() -> None:
    assert "venue_id = 'opera-lyon'" in report_sql("opera-lyon", None)
    with pytest.raises(ValueError):
        report_sql("x' OR 1=1 --", None)


def test_withdrawal_latencies() -> None:
    audit = {"w1": [{"outcome": "consent_recorded", "decided_at": "2026-11-29T10:00:00.500+00:00"},
                    {"outcome": "erasure_requested", "command_id": "c1", "decided_at": "2026-11-29T10:00:00.5+00:00"}],
             "w2": [{"outcome": "consent_recorded", "decided_at": "2026-11-29T10:00:01+00:00"},
                    {"outcome": "erasure_requested", "command_id": "c2", "decided_at": "2026-11-29T10:00:01+00:00"}]}
    t0 = 1795946400.0  # 2026-11-29T10:00:00Z
    erased = {"c1": {"decided_at": "2026-11-29T10:00:03+00:00"}}
    out = latencies({"w1": t0, "w2": t0}, audit, erased)
    assert out["stopped"] == 2 and out["erasures_done"] == 1 and out["erasures_pending"] == 1
    assert out["stop_p50_s"] == pytest.approx(0.75) and out["erased_p99_s"] == pytest.approx(3.0)
