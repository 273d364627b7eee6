"""Plain-language summaries of data-sharing agreements, in French and English (pure).

What a venue's director or DPO reads: per venue, what is shared, with whom, for what purpose,
for how long, on which legal basis, and what never leaves.
"""

from __future__ import annotations

from collections import defaultdict

from schemas.agreements import Agreement
from schemas.kinds import KINDS
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
        "bounce_type": "type de rejet", "machine_open": "ouverture automatique", "scope": "portée du désabonnement",
        "result": "résultat du contrôle", "gate": "porte", "page_path": "chemin de page",
        "referrer_host": "site référent",
        "utm_source": "source UTM", "utm_medium": "support UTM", "utm_campaign": "campagne UTM", "language": "langue",
        "device_type": "type d'appareil", "content_id": "contenu", "content_type": "type de contenu",
        "action": "action", "position_s": "position", "duration_s": "durée", "day": "jour", "platform": "régie",
        "campaign_name": "nom de campagne", "list_id": "liste", "impressions": "impressions", "clicks": "clics",
        "conversions": "conversions", "spend_minor": "dépense",
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
        "bounce_type": "bounce type", "machine_open": "machine open", "scope": "unsubscribe scope",
        "result": "scan result", "gate": "gate", "page_path": "page path", "referrer_host": "referring site",
        "utm_source": "UTM source", "utm_medium": "UTM medium", "utm_campaign": "UTM campaign", "language": "language",
        "device_type": "device type", "content_id": "content", "content_type": "content type", "action": "action",
        "position_s": "position", "duration_s": "duration", "day": "day", "platform": "ad platform",
        "campaign_name": "campaign name", "list_id": "list", "impressions": "impressions", "clicks": "clicks",
        "conversions": "conversions", "spend_minor": "spend",
    },
}


def _shared(agreement: Agreement, lang: str) -> str:
    """Per kind of data the agreement covers: its name, the event types of that kind it names when
    not all of them, and the allowed fields they carry."""
    parts = []
    for kind in KINDS:
        types = [t for t in kind.event_types if t in agreement.event_types]
        if not types:
            continue
        carried = set().union(*(PROJECTABLE_BY_TYPE[t] for t in types))
        own = [FIELD_TEXT[lang].get(f, f) for f in agreement.allowed_fields if f in carried]
        label = kind.label_fr if lang == "fr" else kind.label_en
        if len(types) < len(kind.event_types):
            label += " [" + ", ".join(types) + "]"
        parts.append(f"{label} ({', '.join(own) or '—'})")
    return (" ; " if lang == "fr" else "; ").join(parts)


def describe(agreement: Agreement, lang: str) -> str:
    """One agreement in one sentence block, ``lang`` in {"fr", "en"}."""
    purposes = ", ".join(PURPOSE_TEXT[lang][p.value] for p in agreement.purposes)
    shared = _shared(agreement, lang)
    clicks = "campaign.email_clicked" in agreement.event_types
    never = (" URL des liens, n° de message," if lang == "fr" else " link URLs, message ids,") if clicks else ""
    period = f"{agreement.valid_from:%d/%m/%Y} → {agreement.valid_until:%d/%m/%Y}"
    shared_domain = agreement.pseudonym_domain is not None
    anonymous = [t for t in agreement.event_types if t == "ads.spend_reported"]
    if lang == "fr":
        who = "données de personnes : seulement celles qui ont consenti et nommé ce partenaire" + (
            " (dépenses publicitaires : aucune personne, aucun consentement requis)" if anonymous else "")
        pseudo = (
            f"pseudonyme commun « {agreement.pseudonym_domain} » (partagé par accord)"
            if shared_domain
            else "pseudonyme propre à ce partenaire (aucun rapprochement possible avec d'autres partenaires)"
        )
        return (
            f"  [{agreement.id}] avec « {agreement.partner} », pour : {purposes}\n"
            f"    partagé : {shared} ; identité remplacée par un {pseudo}\n"
            f"    {who} ; "
            f"conservation {agreement.retention_days} jours ; validité {period} ; base légale : "
            f"{agreement.legal_basis}\n"
            f"    jamais partagé : e-mail, téléphone, nom, n° client,{never} et tout champ non listé"
        )
    who = "data about people: only those who consented and named this partner" + (
        " (ad spend: about no one, no consent needed)" if anonymous else "")
    pseudo = (
        f"shared pseudonym domain '{agreement.pseudonym_domain}' (named in the agreement)"
        if shared_domain
        else "pseudonym of this partner's own (cannot be joined with other partners' data)"
    )
    return (
        f"  [{agreement.id}] with '{agreement.partner}', for: {purposes}\n"
        f"    shared: {shared}; identity replaced by a {pseudo}\n"
        f"    {who}; kept {agreement.retention_days} days; "
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
