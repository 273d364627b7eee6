"""The catalogue's "who receives what" section (FR/EN), rendered from :mod:`schemas.kinds` (pure).

One row per kind of data: its event types, what a partner receives (stream, table), under which
tier of consent, for how long, and what the venue's own store keeps; then the rules that do not
fit a table (exempt measurement, unsubscribe versus consent withdrawal, the order lifecycle).
"""

from __future__ import annotations

from schemas.kinds import KINDS, MEASUREMENT_RETENTION_DAYS, MEASUREMENT_TABLE, Kind

TEXT = {
    "en": {
        "title": "Who receives what: kinds of data, consent and retention",
        "head": "| kind | event types | partner receives (stream → table) | partner condition | venue's own store |",
        "consent": "an agreement naming the type, and the person's consent for the agreement's purpose naming "
                   "that partner (default-deny)",
        "no_consent": "an agreement naming the type; no consent (describes no person)",
        "own": "every event, pseudonymized in the venue's own domain",
        "measured": "with a current consent (any purpose): pseudonymized in the venue's own domain; without: "
                    f"only as exempt measurement (`{MEASUREMENT_TABLE}`)",
        "retention": "How long: a partner keeps each row for the `retention_days` of the agreement it was shared "
                     "under (a per-row `retain_until`, then deleted); the venue's own store keeps its rows 3 years "
                     f"and exempt measurement {MEASUREMENT_RETENTION_DAYS} days (25 months). A consent counts for "
                     "13 months (or the configured lifetime); a withdrawal or an expiry erases what partners hold "
                     "under that purpose, an erasure request everything (the venue's store included).",
        "exempt": "Consent-exempt audience measurement (CNIL): page views and content interactions of people "
                  "without a consent are kept for the venue alone, in its own store (`venue.<venue>.measurement` → "
                  f"`{MEASUREMENT_TABLE}`): a per-venue visitor key renewed every calendar year instead of a "
                  "pseudonym (no identifier shared across sites or partners), IP truncated to /24 (/48), city at "
                  "most, URL path only, 25 months. No agreement can share them: `audience_measurement` is refused "
                  "as an agreement purpose, and no partner stream carries this schema.",
        "unsubscribe": "An unsubscribe (`campaign.email_unsubscribed`) is not a consent withdrawal: it stops "
                       "mailings to a list (or all of them) and is shared like any campaign event; the person's "
                       "consents stay as they were. Withdrawing a consent goes through a `consent.withdrawn` event "
                       "(the preference centre's \"withdraw\" link, a form, a CSV import), which stops sharing and "
                       "erases what partners received for that purpose.",
        "lifecycle": "Ticketing carries each order's lifecycle: `ticket_orders` holds one row per event, with "
                     "`status` (placed, paid, issued, cancelled, refunded, exchanged) and `order_ref` (the order, "
                     "pseudonymized); the view `ticket_orders_current` holds one row per order in its latest state "
                     "(`counts` is false once cancelled or refunded). Count tickets and revenue there.",
    },
    "fr": {
        "title": "Qui reçoit quoi : types de données, consentement et conservation",
        "head": "| type de données | types d'événements | le partenaire reçoit (flux → table) "
                "| condition côté partenaire | entrepôt du lieu |",
        "consent": "un accord qui nomme le type, et le consentement de la personne pour la finalité de l'accord, "
                   "nommant ce partenaire (refus par défaut)",
        "no_consent": "un accord qui nomme le type ; pas de consentement (ne décrit aucune personne)",
        "own": "tous les événements, pseudonymisés dans le domaine propre du lieu",
        "measured": "avec un consentement en cours (toute finalité) : pseudonymisés dans le domaine du lieu ; sans : "
                    f"seulement en mesure d'audience exemptée (`{MEASUREMENT_TABLE}`)",
        "retention": "Combien de temps : un partenaire garde chaque ligne le nombre de jours (`retention_days`) de "
                     "l'accord sous lequel elle a été partagée (`retain_until` par ligne, puis suppression) ; "
                     "l'entrepôt du lieu garde ses lignes 3 ans et la mesure d'audience exemptée "
                     f"{MEASUREMENT_RETENTION_DAYS} jours (25 mois). Un consentement vaut 13 mois (ou la durée "
                     "configurée) ; un retrait ou une expiration efface ce que les partenaires détiennent pour "
                     "cette finalité, une demande d'effacement efface tout (entrepôt du lieu compris).",
        "exempt": "Mesure d'audience exemptée de consentement (CNIL) : les pages vues et interactions avec les "
                  "contenus de personnes sans consentement sont gardées pour le seul lieu, dans son entrepôt "
                  f"(`venue.<lieu>.measurement` → `{MEASUREMENT_TABLE}`) : une clé de visiteur propre au lieu, "
                  "renouvelée chaque année civile, au lieu d'un pseudonyme (aucun identifiant commun à plusieurs "
                  "sites ou partenaires), IP tronquée en /24 (/48), ville au plus, chemin d'URL seulement, 25 mois. "
                  "Aucun accord ne peut les partager : la finalité `audience_measurement` est refusée dans un "
                  "accord, et aucun flux de partenaire ne porte ce schéma.",
        "unsubscribe": "Un désabonnement (`campaign.email_unsubscribed`) n'est pas un retrait de consentement : il "
                       "arrête les envois d'une liste (ou de toutes) et se partage comme tout événement de campagne ; "
                       "les consentements de la personne restent inchangés. Retirer un consentement passe par un "
                       "événement `consent.withdrawn` (lien « retirer mon consentement » du centre de préférences, "
                       "formulaire, import CSV), qui arrête le partage et efface ce que les partenaires ont reçu "
                       "pour cette finalité.",
        "lifecycle": "La billetterie porte le cycle de vie de chaque commande : `ticket_orders` garde une ligne par "
                     "événement, avec `status` (placed, paid, issued, cancelled, refunded, exchanged) et `order_ref` "
                     "(la commande, pseudonymisée) ; la vue `ticket_orders_current` garde une ligne par commande dans "
                     "son dernier état (`counts` est faux une fois annulée ou remboursée). Comptez billets et "
                     "recettes là.",
    },
}


def _row(kind: Kind, lang: str) -> str:
    t = TEXT[lang]
    types = ", ".join(f"`{e}`" for e in kind.event_types)
    label = kind.label_fr if lang == "fr" else kind.label_en
    venue = t["measured"] if kind.name in ("web", "content") else t["own"]
    condition = t["consent"] if kind.personal else t["no_consent"]
    return f"| {label} | {types} | `partner.<id>.{kind.stream}` → `{kind.table}` | {condition} | {venue} |"


def sharing_section(lang: str) -> list[str]:
    """The section's Markdown lines in ``lang`` (``en`` or ``fr``)."""
    t = TEXT[lang]
    return ["", f"## {t['title']}", "", t["head"], "|---|---|---|---|---|", *(_row(k, lang) for k in KINDS), "",
            t["retention"], "", t["exempt"], "", t["unsubscribe"], "", t["lifecycle"]]
