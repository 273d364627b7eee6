"""A consent receipt (:mod:`techne.receipts`) as text a person can read, in French or English.

:func:`render` is pure: the same facts as the ISO/IEC TS 27560 JSON — for each purpose its status,
the partners named and what they may keep and for how long, how to withdraw — then every event
with its time and, for a withdrawal, expiry or erasure request, the erasures done (or pending) at
each partner.
"""

from __future__ import annotations

from typing import Any

TEXT = {
    "fr": {
        "title": "Reçu de consentement — {venue}", "ref": "Référence de la personne : {ref}",
        "generated": "Établi le {at}", "purposes": "Finalités", "events": "Historique",
        "consent given": "consentement donné", "consent withdrawn": "consentement retiré",
        "consent expired": "consentement expiré", "erasure requested": "effacement demandé",
        "until": "valable jusqu'au {at}", "recipients": "partenaires nommés (liste {version})",
        "keeps": "conserve au plus {days} jours ({agreements})",
        "no agreement": "aucun accord : rien ne lui est transmis",
        "basis": "base légale : {basis}", "withdraw": "Retirer son consentement : {how}",
        "erased": "effacé chez {partner} le {at} ({rows} ligne(s))", "pending": "effacement en attente chez {partner}",
        "none": "aucun",
    },
    "en": {
        "title": "Consent receipt — {venue}", "ref": "Person reference: {ref}", "generated": "Issued {at}",
        "purposes": "Purposes", "events": "History", "consent given": "consent given",
        "consent withdrawn": "consent withdrawn", "consent expired": "consent expired",
        "erasure requested": "erasure requested", "until": "valid until {at}",
        "recipients": "partners named (list {version})", "keeps": "keeps at most {days} days ({agreements})",
        "no agreement": "no agreement: nothing is sent to it", "basis": "lawful basis: {basis}",
        "withdraw": "To withdraw: {how}", "erased": "erased at {partner} on {at} ({rows} row(s))",
        "pending": "erasure pending at {partner}", "none": "none",
    },
}


def _day(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def render(receipt: dict[str, Any], lang: str = "fr") -> str:
    """The receipt as plain text (``lang``: fr or en)."""
    t = TEXT[lang]
    venue = receipt["partyIdentification"][0]["partyName"]
    lines = [t["title"].format(venue=venue), t["ref"].format(ref=receipt["record"]["piiPrincipalId"]),
             t["generated"].format(at=_day(receipt["record"]["generatedAt"])), "", t["purposes"]]
    for p in receipt["piiProcessing"]["purposes"]:
        status = t.get(p["status"], p["status"])
        until = f", {t['until'].format(at=_day(p['validUntil']))}" if p["validUntil"] else ""
        lines.append(f"- {p['purpose']} : {status}{until}; {t['basis'].format(basis=p['lawfulBasis'])}")
        lines.append(f"  {t['recipients'].format(version=p['recipientListVersion'] or '-')} :")
        for r in p["recipientThirdParties"] or []:
            keeps = (t["keeps"].format(days=r["retentionPeriod"][1:-1], agreements=", ".join(r["agreements"]))
                     if r["retentionPeriod"] else t["no agreement"])
            lines.append(f"    {r['name']} — {keeps}")
        if not p["recipientThirdParties"]:
            lines.append(f"    {t['none']}")
    if receipt["piiProcessing"]["purposes"]:
        lines += ["", t["withdraw"].format(how=receipt["piiProcessing"]["purposes"][0]["withdrawalMethod"])]
    lines += ["", t["events"]]
    for e in receipt["event"]:
        purpose = f" ({e['purpose']})" if e["purpose"] else ""
        lines.append(f"- {_day(e['eventTime'])} : {t.get(e['eventState'], e['eventState'])}{purpose}")
        for x in e["erasuresAtPartners"]:
            lines.append("    " + (t["erased"].format(partner=x["partner"], at=_day(x["erasedAt"]),
                                                      rows=x["rowsDeleted"])
                                   if x["state"] == "done" else t["pending"].format(partner=x["partner"])))
    return "\n".join(lines)
