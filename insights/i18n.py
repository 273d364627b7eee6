"""French (default) and English labels of the insights, their tables and the report."""

from __future__ import annotations

LANGS = ("fr", "en")

TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "overlap": "Publics partagés entre lieux",
        "loyalty": "Fidélité",
        "geography": "Rayonnement géographique",
        "crossover": "Croisements de disciplines",
        "lead_time": "Délai de réservation",
        "conversion": "Conversion des campagnes e-mail",
        "attendance": "Fréquentation et absences (no-show)",
        "performance": "représentation", "holders": "détenteurs de billets", "attended": "venus",
        "no_show": "absents", "no_show_rate": "taux d'absence",
        "campaign_funnel": "Entonnoir des campagnes e-mail", "sent": "envoyés", "delivered": "remis",
        "opened": "ouverts",
        "ordered": "ont réservé sous 7 j",
        "acquisition": "Coût par nouveau spectateur, par canal (attribution au premier contact)",
        "month": "mois", "channel": "canal", "new_buyers": "nouveaux spectateurs", "spend": "dépense publicitaire",
        "cost_per_new": "coût par nouveau spectateur", "all_channels": "tous canaux",
        "untracked": "non suivi (aucune visite consentie)", "direct": "accès direct",
        "web_before_purchase": "Pages et contenus vus avant le premier achat (30 jours, personnes consentantes)",
        "kind": "type", "item": "page ou contenu", "page": "page", "content": "contenu",
        "any_touch": "au moins une page ou un contenu", "share": "part",
        "acquisition_chart": "Coût par nouveau spectateur, dernier mois avec dépense publicitaire (lieu · canal)",
        "masked_cost": "coût masqué (moins de k nouveaux spectateurs)",
        "season": "saison", "venue": "lieu", "venue_a": "lieu A", "venue_b": "lieu B",
        "departement": "département", "discipline": "discipline", "discipline_a": "discipline A",
        "discipline_b": "discipline B", "tariff": "tarif", "campaign": "campagne", "persons": "personnes",
        "spectators": "spectateurs", "first_time": "nouveaux", "returning": "revenus",
        "freq_1": "1 repr.", "freq_2": "2 repr.", "freq_3-5": "3 à 5 repr.", "freq_6+": "6 repr. et +",
        "lapsed": "perdus de vue", "clicked": "ont cliqué", "converted": "ont réservé sous 7 j",
        "rate": "taux", "p25_days": "1er quartile (j)", "median_days": "médiane (j)", "p75_days": "3e quartile (j)",
        "all": "tous lieux", "unknown": "non renseigné", "any_tariff": "tous tarifs",
        "suppressed_line": "{suppressed} cellule(s) masquée(s) sur {cells} : {threshold} sous le seuil de {k} "
                           "personnes, {differencing} contre les recoupements, {complementary} en secret "
                           "complémentaire, {same_persons} identiques à une cellule masquée.",
        "unavailable": "indisponible : les accords de ce partenaire ne partagent pas {what}",
        "empty": "aucune cellule publiable",
        "not_comparable": "non comparables (domaines de pseudonymes différents) : {pairs}",
        "report_title": "Publics de la culture — observations partagées",
        "report_sub": "Partenaire {partner} · seuil de protection k = {k} personnes · calculé le {at}",
        "heatmap": "Publics partagés entre lieux, saison {season} (personnes distinctes)",
        "bars": "Spectateurs par département, saison {season}, tous lieux (personnes distinctes)",
        "funnel": "Fidélité, saison {season}, tous lieux",
        "funnel_all": "spectateurs", "funnel_2": "au moins 2 représentations",
        "funnel_3": "au moins 3 représentations", "funnel_6": "au moins 6 représentations",
        "masked": "— masqué (moins de k personnes ou recoupement)",
        "protection": "Protection des petits effectifs : aucune cellule publiée ne compte moins de {k} "
                      "personnes, y compris par différence entre deux cellules publiées. "
                      "Les cellules masquées apparaissent vides.",
        "no_data": "pas de données",
        "other_depts": "{n} département(s) masqué(s)",
    },
    "en": {
        "overlap": "Audience overlap between venues",
        "loyalty": "Loyalty",
        "geography": "Geographic reach",
        "crossover": "Discipline crossover",
        "lead_time": "Booking lead time",
        "conversion": "E-mail campaign conversion",
        "attendance": "Attendance and no-shows",
        "performance": "performance", "holders": "ticket holders", "attended": "attended",
        "no_show": "no-shows", "no_show_rate": "no-show rate",
        "campaign_funnel": "E-mail campaign funnel", "sent": "sent", "delivered": "delivered", "opened": "opened",
        "ordered": "ordered within 7 d",
        "acquisition": "Cost per new spectator by channel (first-touch attribution)",
        "month": "month", "channel": "channel", "new_buyers": "new spectators", "spend": "ad spend",
        "cost_per_new": "cost per new spectator", "all_channels": "all channels",
        "untracked": "untracked (no consented visit)", "direct": "direct",
        "web_before_purchase": "Pages and contents seen before a first order (30 days, consented people)",
        "kind": "kind", "item": "page or content", "page": "page", "content": "content",
        "any_touch": "at least one page or content", "share": "share",
        "acquisition_chart": "Cost per new spectator, latest month with ad spend (venue · channel)",
        "masked_cost": "cost suppressed (fewer than k new spectators)",
        "season": "season", "venue": "venue", "venue_a": "venue A", "venue_b": "venue B",
        "departement": "département", "discipline": "discipline", "discipline_a": "discipline A",
        "discipline_b": "discipline B", "tariff": "tariff", "campaign": "campaign", "persons": "persons",
        "spectators": "spectators", "first_time": "first-time", "returning": "returning",
        "freq_1": "1 perf.", "freq_2": "2 perf.", "freq_3-5": "3-5 perf.", "freq_6+": "6+ perf.",
        "lapsed": "lapsed", "clicked": "clicked", "converted": "ordered within 7 d",
        "rate": "rate", "p25_days": "1st quartile (d)", "median_days": "median (d)", "p75_days": "3rd quartile (d)",
        "all": "all venues", "unknown": "unknown", "any_tariff": "any tariff",
        "suppressed_line": "{suppressed} of {cells} cell(s) suppressed: {threshold} below the threshold of {k} "
                           "persons, {differencing} against differencing, {complementary} as complementary "
                           "suppression, {same_persons} identical to a suppressed cell.",
        "unavailable": "unavailable: this partner's agreements do not share {what}",
        "empty": "no publishable cell",
        "not_comparable": "not comparable (different pseudonym domains): {pairs}",
        "report_title": "Cultural audiences — shared insights",
        "report_sub": "Partner {partner} · protection threshold k = {k} persons · computed on {at}",
        "heatmap": "Audience overlap between venues, season {season} (distinct persons)",
        "bars": "Spectators by département, season {season}, all venues (distinct persons)",
        "funnel": "Loyalty, season {season}, all venues",
        "funnel_all": "spectators", "funnel_2": "2 performances or more",
        "funnel_3": "3 performances or more", "funnel_6": "6 performances or more",
        "masked": "— suppressed (fewer than k persons, or differencing)",
        "protection": "Small-cell protection: no published cell counts fewer than {k} persons, including "
                      "by difference between two published cells. Suppressed cells are shown empty.",
        "no_data": "no data",
        "other_depts": "{n} département(s) suppressed",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    text = TEXT[lang].get(key, key)
    return text.format(**values) if values else text


def season_label(season: int) -> str:
    """``2026`` -> ``2026-27`` (seasons start on 1 September)."""
    return f"{season}-{(season + 1) % 100:02d}"
