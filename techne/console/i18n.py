"""The console's texts, French first, English available (``?lang=en``, kept in a cookie).

:data:`TEXT` maps a key to its French and English text; :func:`translator` gives the ``t(key,
**values)`` the templates call (a missing English text falls back to French). Reason codes of the
bus (audit reasons, dead-letter reasons, sources) have their own tables with, for refusals, what
the venue's team can do about them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LANGS = ("fr", "en")

TEXT: dict[str, tuple[str, str]] = {
    "app": ("Console du lieu", "Venue console"),
    "login": ("Connexion", "Sign in"),
    "username": ("Identifiant", "Login"),
    "password": ("Mot de passe", "Password"),
    "sign_in": ("Se connecter", "Sign in"),
    "sign_out": ("Se déconnecter", "Sign out"),
    "bad_login": ("Identifiant ou mot de passe incorrect.", "Wrong login or password."),
    "too_many": ("Trop de tentatives de connexion. Réessayez dans {minutes} minute(s).",
                 "Too many sign-in attempts. Try again in {minutes} minute(s)."),
    "bad_link": ("Ce lien de connexion est inconnu, expiré ou déjà utilisé. Demandez-en un nouveau.",
                 "This sign-in link is unknown, expired or already used. Ask for a new one."),
    "csrf": ("Jeton de sécurité du formulaire manquant ou invalide : rechargez la page et recommencez.",
             "Missing or invalid form security token: reload the page and try again."),
    "forbidden": ("Accès refusé : cette page appartient à un autre lieu.", "Access denied: this page belongs to "
                  "another venue."),
    "not_found": ("Page introuvable.", "Page not found."),
    "error": ("Erreur", "Error"),
    "back": ("Retour", "Back"),
    "venues": ("Lieux", "Venues"),
    "operator": ("exploitation (tous les lieux)", "operator (every venue)"),
    "nav_sharing": ("Ce que je partage", "What I share"),
    "nav_sources": ("Mes sources", "My sources"),
    "nav_import": ("Importer un fichier", "Import a file"),
    "nav_consents": ("Consentements", "Consents"),
    "nav_insights": ("Analyses", "Insights"),
    "per_partner": ("Par partenaire et finalité", "Per partner and purpose"),
    "period": ("Période", "Period"),
    "from": ("du", "from"),
    "to": ("au", "to"),
    "show": ("Afficher", "Show"),
    "partner": ("Partenaire", "Partner"),
    "purpose": ("Finalité", "Purpose"),
    "shared": ("Partagés", "Shared"),
    "dropped": ("Non partagés (pas de consentement)", "Not shared (no consent)"),
    "no_agreement": ("Non partagés (aucun accord)", "Not shared (no agreement)"),
    "events": ("événements", "events"),
    "nothing": ("Rien sur cette période.", "Nothing in this period."),
    "agreements": ("Accords de partage", "Data-sharing agreements"),
    "fields": ("Champs partagés", "Fields shared"),
    "retention": ("Conservation", "Retention"),
    "days": ("jours", "days"),
    "ends": ("Fin de l'accord", "Agreement ends"),
    "withdrawals": ("Retraits de consentement et effacements", "Consent withdrawals and erasures"),
    "promise": ("Engagement : partage arrêté en {stop} s au plus, données effacées chez chaque partenaire en {erase} s "
                "au plus.", "Promise: sharing stopped within {stop} s, data erased at every partner within {erase} s."),
    "received": ("Reçu", "Received"),
    "stop": ("Arrêt du partage", "Sharing stopped"),
    "erased": ("Effacement", "Erasure"),
    "kept": ("tenu", "kept"),
    "missed": ("dépassé", "missed"),
    "pending": ("en attente chez {who}", "pending at {who}"),
    "no_erasure": ("aucune donnée à effacer", "nothing to erase"),
    "own_store": ("votre propre base", "your own store"),
    "partner_tables": ("Dans les bases des partenaires", "In the partners' stores"),
    "table": ("Table", "Table"),
    "rows": ("Lignes de ce lieu", "Rows of this venue"),
    "latest": ("Dernier événement", "Latest event"),
    "dpo_version": ("Version imprimable pour le DPO", "Printable version for the DPO"),
    "print": ("Imprimer", "Print"),
    "dpo_title": ("Registre de partage — {venue}", "Sharing register — {venue}"),
    "generated": ("Établi le {at} pour la période du {since} au {until}.",
                  "Generated on {at} for {since} to {until}."),
    "no_pseudonym": ("Aucun pseudonyme ni identifiant n'apparaît dans cette console : seulement des comptes.",
                     "No pseudonym or identifier appears in this console: counts only."),
    "source": ("Source", "Source"),
    "last_delivery": ("Dernière livraison", "Last delivery"),
    "accepted": ("Acceptés", "Accepted"),
    "rejected": ("Refusés", "Rejected"),
    "latest_rejections": ("Derniers refus", "Latest rejections"),
    "reason": ("Raison", "Reason"),
    "todo": ("Que faire", "What to do"),
    "when": ("Quand", "When"),
    "no_rejection": ("Aucun refus enregistré.", "No rejection recorded."),
    "rejected_note": ("« Refusés » : lignes des fichiers importés sur la période qui n'ont pas été envoyées.",
                      "'Rejected': rows of the files imported in the period that were not sent."),
    "webhook_note": ("Un envoi refusé par la passerelle (signature, format) reçoit sa raison immédiatement dans la "
                     "réponse HTTP : consultez le journal d'envoi de votre billetterie.",
                     "A delivery refused by the gateway (signature, format) gets its reason at once in the HTTP "
                     "answer: see your ticketing tool's delivery log."),
    "upload": ("Déposer un fichier", "Upload a file"),
    "file": ("Fichier (CSV ou XLSX)", "File (CSV or XLSX)"),
    "profile": ("Profil de lecture", "Reading profile"),
    "detect": ("Détecter automatiquement", "Detect automatically"),
    "analyse": ("Analyser (rien n'est envoyé)", "Analyse (nothing is sent)"),
    "no_profile": ("Aucun profil ne correspond aux colonnes de ce fichier. Colonnes attendues par « {name} » : {cols}.",
                   "No profile matches this file's columns. Columns expected by '{name}': {cols}."),
    "unreadable": ("Fichier illisible : {why}", "Unreadable file: {why}"),
    "too_big": ("Fichier trop volumineux (plus de {mb} Mo).", "File too large (over {mb} MB)."),
    "empty_file": ("Choisissez un fichier.", "Choose a file."),
    "preview": ("Aperçu : les premières lignes telles que le bus les lit", "Preview: the first rows as the bus reads "
                "them"),
    "line": ("Ligne", "Line"),
    "column": ("Colonne", "Column"),
    "row_errors": ("Erreurs de lignes ({n}) — ces lignes ne seront pas envoyées",
                   "Row errors ({n}) — these rows will not be sent"),
    "row_todo": ("Corrigez la colonne « {column} » de la ligne {line} dans votre fichier puis déposez-le à nouveau : "
                 "les lignes déjà envoyées ne partent pas deux fois.",
                 "Fix column '{column}' of line {line} in your file and upload it again: rows already sent are "
                 "not sent twice."),
    "summary": ("{rows} lignes lues : {valid} valides dont {fresh} nouvelles et {already} déjà envoyées ; "
                "{bad} en erreur.", "{rows} rows read: {valid} valid, of which {fresh} new and {already} already "
                "sent; {bad} with errors."),
    "send": ("Envoyer {n} ligne(s)", "Send {n} row(s)"),
    "nothing_new": ("Rien de nouveau à envoyer.", "Nothing new to send."),
    "sending": ("Envoi en cours…", "Sending…"),
    "sent": ("Envoyé : {sent} nouvelle(s) ligne(s), {already} déjà envoyée(s), {bad} refusée(s).",
             "Sent: {sent} new row(s), {already} already sent, {bad} refused."),
    "send_failed": ("L'envoi a échoué : {why}. Réessayez : ce qui est parti ne repartira pas.",
                    "Sending failed: {why}. Try again: what left will not leave twice."),
    "file_gone": ("Le fichier lui-même a été supprimé (après son envoi, ou 24 h après son dépôt) : il contient des "
                  "données personnelles. Seul le bilan est gardé ; déposez-le à nouveau pour le relire.",
                  "The file itself was deleted (once sent, or 24 h after its upload): it holds personal data. Only "
                  "the result is kept; upload it again to read it again."),
    "row_errors_sent": ("Lignes non envoyées ({n})", "Rows not sent ({n})"),
    "recent_uploads": ("Derniers fichiers", "Recent files"),
    "errors_csv": ("Télécharger les erreurs (CSV)", "Download the errors (CSV)"),
    "state": ("État", "State"),
    "purpose_state": ("Consentements enregistrés sur la période, par finalité et état",
                      "Consents recorded in the period, per purpose and state"),
    "expiries": ("Expirations à venir (60 jours)", "Expiries coming (60 days)"),
    "expiry_note": ("Consentements donnés il y a presque 13 mois : sans renouvellement, ils expirent ce jour-là et "
                    "les données partagées sont effacées chez les partenaires.",
                    "Consents given almost 13 months ago: unless renewed they lapse that day and the shared data is "
                    "erased at the partners."),
    "day": ("Jour", "Day"),
    "count": ("Nombre", "Count"),
    "preference_centre": ("Centre de préférences", "Preference centre"),
    "preference_text": ("Chaque personne a son propre lien, à mettre dans le pied de vos lettres d'information : "
                        "elle y voit les partenaires et finalités, et donne ou retire son consentement aussi "
                        "facilement.", "Each person has a link of their own, for your newsletters' footer: they see "
                        "the partners and purposes there, and grant or withdraw consent as easily."),
    "preference_emails": ("Adresses e-mail de vos abonnés (une par ligne)", "Your subscribers' e-mail addresses "
                          "(one per line)"),
    "preference_download": ("Télécharger les liens (CSV pour votre outil d'envoi)", "Download the links (CSV for your "
                            "mailing tool)"),
    "preference_note": ("Les adresses servent à calculer les liens puis sont oubliées : rien n'est conservé. Chaque "
                        "lien est chiffré (l'adresse ne s'y lit pas) et expire au bout de 30 jours : régénérez-les "
                        "pour chaque envoi.", "Addresses are used to compute the links, then forgotten: nothing is "
                        "kept. Each link is encrypted (the address cannot be read from it) and expires after 30 "
                        "days: generate them again for each mailing."),
    "insights_of": ("Analyses partagées du réseau (partenaire « {partner} », cellules de moins de {k} personnes "
                    "masquées)", "Shared network insights (partner '{partner}', cells under {k} persons hidden)"),
    "open_report": ("Ouvrir le rapport dans un nouvel onglet", "Open the report in a new tab"),
    "no_insights": ("Aucune analyse partagée pour ce lieu : aucun accord ne partage ses données pour les analyses "
                    "inter-lieux.", "No shared insights for this venue: no agreement shares its data for cross-venue "
                    "analytics."),
    "no_data_yet": ("rien n'a encore été partagé avec ce partenaire.",
                    "nothing has been shared with this partner yet."),
    "unavailable": ("Données indisponibles pour le moment : {why}", "Data unavailable right now: {why}"),
    "one_time": ("Lien de connexion à usage unique", "One-time sign-in link"),
}

REASONS: dict[str, tuple[str, str]] = {
    "no_record": ("aucun consentement enregistré", "no consent recorded"),
    "withdrawn": ("consentement retiré", "consent withdrawn"),
    "expired": ("consentement expiré", "consent expired"),
    "recipient_not_named": ("partenaire non nommé dans le consentement", "partner not named in the consent"),
    "no_purpose": ("pas de consentement pour cette finalité", "no consent for this purpose"),
    "type_not_shareable": ("type d'événement partagé par aucun accord", "event type shared by no agreement"),
    "no_matching_agreement": ("aucun accord ne couvre ce lieu et ce type", "no agreement covers this venue and type"),
}
STATES: dict[str, tuple[str, str]] = {
    "consent.granted": ("donnés", "granted"),
    "consent.withdrawn": ("retirés", "withdrawn"),
    "consent.expired": ("expirés", "expired"),
    "erasure.requested": ("effacements demandés", "erasures requested"),
    "subject.erasure_requested": ("effacements demandés", "erasures requested"),
}
SOURCES: dict[str, tuple[str, str]] = {
    "standard-webhooks": ("Webhook signé (votre billetterie)", "Signed webhook (your ticketing tool)"),
    "csv-import": ("Import de fichier (CSV / XLSX)", "File import (CSV / XLSX)"),
    "site-key:matomo": ("Site web (Matomo)", "Website (Matomo)"),
    "site-key:beacon": ("Site web (collecteur)", "Website (collector)"),
    "preference-centre:signed-link": ("Centre de préférences", "Preference centre"),
    "basic": ("Connecteur éditeur (authentification Basic)", "Vendor connector (Basic auth)"),
}
DEAD_LETTERS: dict[str, tuple[str, str]] = {
    "unknown_schema": ("version de format inconnue du bus", "format version unknown to the bus"),
    "bad_magic": ("message illisible (pas au format du bus)", "unreadable message (not in the bus's format)"),
    "truncated": ("message tronqué", "truncated message"),
    "corrupt_body": ("contenu illisible", "unreadable content"),
    "trailing_bytes": ("contenu illisible", "unreadable content"),
    "not_a_record": ("contenu illisible", "unreadable content"),
    "unshareable": ("événement impossible à préparer pour un partenaire", "event that cannot be prepared for a "
                    "partner"),
}
DEAD_LETTER_TODO = ("Rien à corriger de votre côté : l'équipe d'exploitation est alertée, l'événement est conservé "
                    "et sera rejoué après correction.",
                    "Nothing to fix on your side: the operators are alerted, the event is kept and will be "
                    "replayed once fixed.")


def pick(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    pair = table.get(key)
    if pair is None:
        if ":" in key and table is SOURCES:
            kind = key.split(":", 1)[0]
            return (f"Connecteur {kind}" if lang == "fr" else f"{kind} connector")
        return key
    return pair[1] if lang == "en" and pair[1] else pair[0]


def translator(lang: str) -> Callable[..., str]:
    def t(key: str, **values: Any) -> str:
        pair = TEXT.get(key, (key, key))
        text = pair[1] if lang == "en" and pair[1] else pair[0]
        return text.format(**values) if values else text

    return t
