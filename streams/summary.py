"""Plain-language summaries of data-sharing agreements, in French and English (pure).

What a venue's director or DPO reads: per venue, what is shared, with whom, for what purpose,
for how long, on which legal basis, and what never leaves.
"""

from __future__ import annotations

from collections import defaultdict

from streams.agreements import Agreement

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
    },
}


def describe(agreement: Agreement, lang: str) -> str:
    """One agreement in one sentence block, ``lang`` in {"fr", "en"}."""
    purposes = ", ".join(PURPOSE_TEXT[lang][p.value] for p in agreement.purposes)
    fields = ", ".join(FIELD_TEXT[lang].get(f, f) for f in agreement.allowed_fields) or "—"
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
            f"    partagé : billets commandés ({fields}) ; identité remplacée par un {pseudo}\n"
            f"    seulement pour les personnes ayant consenti et nommé ce partenaire ; "
            f"conservation {agreement.retention_days} jours ; validité {period} ; base légale : "
            f"{agreement.legal_basis}\n"
            f"    jamais partagé : e-mail, téléphone, nom, n° client, et tout champ non listé"
        )
    pseudo = (
        f"shared pseudonym domain '{agreement.pseudonym_domain}' (named in the agreement)"
        if shared_domain
        else "pseudonym of this partner's own (cannot be joined with other partners' data)"
    )
    return (
        f"  [{agreement.id}] with '{agreement.partner}', for: {purposes}\n"
        f"    shared: ticket orders ({fields}); identity replaced by a {pseudo}\n"
        f"    only for people who consented and named this partner; kept {agreement.retention_days} days; "
        f"valid {period}; legal basis: {agreement.legal_basis}\n"
        f"    never shared: e-mail, phone, name, customer id, and any field not listed"
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
