""""What we share, why, with whom": the sharing report of one venue, in French and English.

Built from the audit store (every routing decision, consent change and erasure, written by
the audit sink into ``<data_dir>/audit``). :func:`report_sql` is the one query;
:func:`render` is pure formatting of its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

OUTCOME_TEXT = {
    "fr": {"shared": "partagés", "dropped": "non partagés (pas de consentement)",
           "no_agreement": "non partagés (aucun accord)", "erasure_requested": "effacements demandés",
           "erased": "effacements exécutés", "consent_recorded": "changements de consentement enregistrés",
           "venue_store": "gardés dans l'entrepôt du lieu (jamais partagés)"},
    "en": {"shared": "shared", "dropped": "not shared (no consent)", "no_agreement": "not shared (no agreement)",
           "erasure_requested": "erasures requested", "erased": "erasures done",
           "consent_recorded": "consent changes recorded",
           "venue_store": "kept in the venue's own store (never shared)"},
}
REASON_TEXT = {
    "fr": {"no_record": "aucun consentement enregistré", "withdrawn": "consentement retiré",
           "expired": "consentement expiré", "recipient_not_named": "partenaire non nommé dans le consentement",
           "no_purpose": "pas de consentement pour cette finalité", "granted": "consentement valide",
           "no_personal_data": "aucune donnée personnelle (dépenses publicitaires)", "own_use": "usage propre du lieu",
           "consented": "personne ayant consenti", "exempt_measurement": "mesure d'audience exemptée de consentement"},
    "en": {"no_record": "no consent recorded", "withdrawn": "consent withdrawn", "expired": "consent expired",
           "recipient_not_named": "partner not named in the consent", "no_purpose": "no consent for this purpose",
           "granted": "valid consent", "no_personal_data": "no personal data (ad spend)", "own_use": "venue's own use",
           "consented": "person who consented", "exempt_measurement": "consent-exempt audience measurement"},
}


def report_sql(venue: str, since: date | None) -> str:
    """Aggregate of the audit decisions of ``venue`` (values are validated before use)."""
    if not venue.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"invalid venue id {venue!r}")
    where = f"venue_id = '{venue}'"
    if since is not None:
        where += f" AND decided_at >= toDateTime64('{since.isoformat()}', 6, 'UTC')"
    # a redelivered audit line is stored twice: count distinct (event, partner) decisions
    return ("SELECT outcome, ifNull(partner, ''), ifNull(purpose, ''), ifNull(event_type, ''), reason, "  # noqa: S608
            f"uniqExact(event_id, ifNull(partner, '')) FROM decisions WHERE {where} "
            "GROUP BY ALL ORDER BY outcome, 2, 3, 4, 5")


def render(rows: Sequence[Sequence[Any]], venue: str, lang: str, since: date | None = None) -> str:
    """Human report from ``report_sql`` rows: (outcome, partner, purpose, event_type, reason, count)."""
    t = OUTCOME_TEXT[lang]
    reasons = REASON_TEXT[lang]
    title = (f"Ce que partage {venue}" if lang == "fr" else f"What {venue} shares") + (
        f" (depuis le {since:%d/%m/%Y})" if since and lang == "fr" else f" (since {since})" if since else "")
    lines = [title, "=" * len(title)]
    if not rows:
        lines.append("aucune décision enregistrée" if lang == "fr" else "no decision recorded")
    current = None
    for outcome, partner, purpose, event_type, reason, count in rows:
        if outcome != current:
            lines.append(f"\n{t.get(outcome, outcome)}:")
            current = outcome
        who = f"{'avec' if lang == 'fr' else 'with'} {partner}" if partner else ""
        why = f"{'pour' if lang == 'fr' else 'for'} {purpose}" if purpose else ""
        lines.append(f"  {int(count):>7}  {event_type:<22} {who:<26} {why:<32} ({reasons.get(reason, reason)})")
    return "\n".join(lines)
