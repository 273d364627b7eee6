"""Plain-language summaries of data-sharing agreements, in French and English (pure).

What a venue's director or DPO reads: per venue, what is shared, with whom, for what purpose,
for how long, on which legal basis, and what never leaves.
"""

from __future__ import annotations

from collections import defaultdict

from schemas.agreements import Agreement
from schemas.sharing import PROJECTABLE_BY_TYPE

PURPOSE_TEXT = {
    "fr": {
        "cross_venue_analytics": "analyses d'audience inter-lieux",
        "marketing": "marketing",
        "research": "recherche",
        "audience_measurement": "mesure d'audience (exemptée de consentement)",
    },
    "en": {
        "cross_venue_analytics": "cross-venue audience analytics",
        "marketing": "marketing",
        "research": "research",
        "audience_measurement": "audience measurement (consent-exempt)",
    },
}
FIELD_TEXT = {
    "fr": {
        "departement": "département",
        "age_band": "tranche d'âge",
        "hall": "salle",
        "price_category": "catégorie de prix",
        "is_invitation": "invitation",
        "production_id": "n° de spectacle",
        "production": "spectacle",
        "performance_id": "représentation",
        "performance_at": "date de représentation",
        "discipline": "discipline",
        "tariff": "tarif",
        "channel": "canal de vente",
        "quantity": "nombre de billets",
        "amount_minor": "montant",
        "currency": "devise",
        "order_id": "n° de commande",
        "campaign_id": "n° de campagne",
    },
    "en": {
        "departement": "département",
        "age_band": "age band",
        "hall": "hall",
        "price_category": "price category",
        "is_invitation": "invitation",
        "production_id": "production id",
        "production": "show",
        "performance_id": "performance",
        "performance_at": "performance date",
        "discipline": "discipline",
        "tariff": "tariff",
        "channel": "sales channel",
        "quantity": "number of tickets",
        "amount_minor": "amount",
        "currency": "currency",
        "order_id": "order number",
        "campaign_id": "campaign id",
    },
}
TYPE_TEXT = {
    "fr": {"ticket.order_placed": "billets commandés", "campaign.email_clicked": "clics dans les e-mails de campagne"},
    "en": {"ticket.order_placed": "ticket orders", "campaign.email_clicked": "e-mail campaign clicks"},
}


def _shared(agreement: Agreement, lang: str) -> str:
    """Per event type of the agreement: its name and the allowed fields it carries."""
    parts = []
    for event_type in agreement.event_types:
        own = [FIELD_TEXT[lang].get(f, f) for f in agreement.allowed_fields if f in PROJECTABLE_BY_TYPE[event_type]]
        parts.append(f"{TYPE_TEXT[lang].get(event_type, event_type)} ({', '.join(own) or '—'})")
    return (" ; " if lang == "fr" else "; ").join(parts)


def describe(agreement: Agreement, lang: str) -> str:
    """One agreement in one sentence block, ``lang`` in {"fr", "en"}."""
    purposes = ", ".join(PURPOSE_TEXT[lang][p.value] for p in agreement.purposes)
    shared = _shared(agreement, lang)
    clicks = "campaign.email_clicked" in agreement.event_types
    never = (" URL des liens, n° de message," if lang == "fr" else " link URLs, message ids,") if clicks else ""
    period = f"{agreement.valid_from:%d/%m/%Y} → {agreement.valid_until:%d/%m/%Y}"
    shared_domain = agreement.pseudonym_domain is not None
    if lang == "fr":
        pseudo = (
            f"pseudonyme commun « {agreement.pseudonym_domain} » (partagé par accord)"
            if shared_domain
            else "pseudonyme propre à ce partenaire (aucun rapprochement possible avec d'autres partenaires)"
        )
        return (
            f"  [{agreement.id}] avec « {agreement.partner} », pour : {purposes}\n"
            f"    partagé : {shared} ; identité remplacée par un {pseudo}\n"
            f"    seulement pour les personnes ayant consenti et nommé ce partenaire ; "
            f"conservation {agreement.retention_days} jours ; validité {period} ; base légale : "
            f"{agreement.legal_basis}\n"
            f"    jamais partagé : e-mail, téléphone, nom, n° client,{never} et tout champ non listé"
        )
    pseudo = (
        f"shared pseudonym domain '{agreement.pseudonym_domain}' (named in the agreement)"
        if shared_domain
        else "pseudonym of this partner's own (cannot be joined with other partners' data)"
    )
    return (
        f"  [{agreement.id}] with '{agreement.partner}', for: {purposes}\n"
        f"    shared: {shared}; identity replaced by a {pseudo}\n"
        f"    only for people who consented and named this partner; kept {agreement.retention_days} days; "
        f"valid {period}; legal basis: {agreement.legal_basis}\n"
        f"    never shared: e-mail, phone, name, customer id,{never} and any field not listed"
    )


def summarize(agreements: list[Agreement], venue_names: dict[str, str], lang: str) -> str:
    """Per venue, every agreement that shares its data."""
    by_venue: dict[str, list[Agreement]] = defaultdict(list)
    for agreement in agreements:
        for venue in agreement.provider_venues:
            by_venue[venue].append(agreement)
    head = "Ce que partage" if lang == "fr" else "What is shared by"
    none = "  (aucun partage)" if lang == "fr" else "  (nothing shared)"
    out = []
    for venue in sorted(venue_names):
        out.append(
            f"{head} {venue_names[venue]} ({venue}) :" if lang == "fr" else f"{head} {venue_names[venue]} ({venue}):"
        )
        shared = [describe(a, lang) for a in by_venue.get(venue, [])]
        out.extend(shared or [none])
        out.append("")
    return "\n".join(out)
