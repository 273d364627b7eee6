"""``techne init``: a venue's first configuration, written from a few answers.

:func:`apply` writes, for :class:`Answers` already validated:

1. the venue's entry, appended to the venue directory (``deploy/venues.yaml``; comments kept),
   then the whole file re-validated (restored as it was if that fails);
2. a new Standard Webhooks secret (``whsec_`` + 32 random bytes, base64) in
   ``<data_dir>/secrets/<venue>.whsec``, created with mode 0600 in a 0700 directory, never
   overwritten; the secret is returned to be shown once, and never logged;
3. one **draft** agreement per partner in ``<agreements_dir>/drafts/`` (validated by the same
   model as real agreements, but outside the directory the bus loads: nothing is shared until a
   person moves it there after review and signature).

Nothing is written if a check fails first (unknown partner id format, venue id taken, secret
already there).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import yaml
from pydantic import ValidationError

from core.errors import ConfigError
from core.venues import load_venues
from schemas.agreements import Agreement
from schemas.models import Purpose

PRESETS: dict[str, list[str]] = {
    "essentiel": ["production", "performance_id", "performance_at", "discipline", "tariff", "channel", "quantity"],
    "montants": ["production", "performance_id", "performance_at", "discipline", "tariff", "channel", "quantity",
                 "amount_minor", "currency"],
    "territoire": ["production", "performance_id", "performance_at", "discipline", "tariff", "channel", "quantity",
                   "amount_minor", "currency", "departement", "age_band"],
}
PRESET_TEXT = {
    "fr": {"essentiel": "spectacles, dates, disciplines, tarifs, canaux, nombre de billets",
           "montants": "essentiel + montants", "territoire": "montants + département et tranche d'âge"},
    "en": {"essentiel": "shows, dates, disciplines, tariffs, channels, ticket counts",
           "montants": "essential + amounts", "territoire": "amounts + département and age band"},
}
TOOLS = ("secutix", "helloasso", "billetweb", "rodrigue", "supersoniks", "weezevent", "autre")
SHAREABLE_PURPOSES = tuple(p.value for p in Purpose if p is not Purpose.AUDIENCE_MEASUREMENT)
RETENTION_DAYS = 395


def slug(name: str) -> str:
    """A venue id from a name: ``Théâtre de la Ville`` -> ``theatre-de-la-ville``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63]


@dataclass(frozen=True)
class Share:
    partner: str
    purpose: str
    preset: str = "essentiel"

    @classmethod
    def parse(cls, text: str) -> Share:
        """``partner:purpose[:preset]``."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"share {text!r}: expected partner:purpose[:preset]")
        return cls(*parts)


@dataclass(frozen=True)
class Answers:
    name: str
    venue_id: str
    city: str
    tool: str
    mode: str  # webhook | csv
    shares: tuple[Share, ...] = ()


@dataclass
class Written:
    venues_file: Path
    secret_file: Path
    secret: str = field(repr=False)
    drafts: list[Path] = field(default_factory=list)


Problem = tuple[str, str]
"""Why an answer is refused: (French, English), one line each, never a library's dump."""


def name_problem(value: str) -> Problem | None:
    if not value.strip():
        return "le nom ne peut pas être vide", "the name cannot be empty"
    if len(value) > 200:
        return "200 caractères au plus", "200 characters at most"
    return None


def id_problem(value: str, venues_file: Path) -> Problem | None:
    if not re.match(r"^[a-z0-9][a-z0-9-]{1,62}$", value):
        return (f"identifiant « {value} » : 2 à 63 caractères parmi a-z, 0-9 et « - », sans accent ni espace",
                f"id {value!r}: 2 to 63 of a-z, 0-9 and '-'")
    if venues_file.exists() and value in load_venues(venues_file):
        return (f"le lieu « {value} » existe déjà dans {venues_file} : choisissez un autre identifiant",
                f"venue {value!r} already exists in {venues_file}: choose another id")
    return None


def _choice(unknown_fr: str, kind_en: str, value: str, allowed: tuple[str, ...] | list[str]) -> Problem | None:
    if value in allowed:
        return None
    listed = ", ".join(allowed) or "—"
    return f"{unknown_fr} : « {value} » (choix : {listed})", f"unknown {kind_en} {value!r} (one of: {listed})"


def tool_problem(value: str) -> Problem | None:
    return _choice("outil de billetterie inconnu", "ticketing tool", value, TOOLS)


def mode_problem(value: str) -> Problem | None:
    return _choice("mode de connexion inconnu", "connection", value, ("webhook", "csv"))


def partner_problem(value: str, known: list[str]) -> Problem | None:
    if value in known:
        return None
    listed = ", ".join(known) or "—"
    return (f"partenaire inconnu : « {value} » (partenaires des accords : {listed})",
            f"unknown partner {value!r} (partners of the agreements: {listed})")


def purpose_problem(value: str) -> Problem | None:
    return _choice("finalité inconnue", "purpose", value, SHAREABLE_PURPOSES)


def preset_problem(value: str) -> Problem | None:
    return _choice("jeu de données inconnu", "preset", value, tuple(PRESETS))


def share_problems(share: Share, known: list[str]) -> list[Problem]:
    found = [partner_problem(share.partner, known), purpose_problem(share.purpose), preset_problem(share.preset)]
    return [p for p in found if p is not None]


def draft(answers: Answers, share: Share, today: date) -> Agreement:
    """The draft agreement for one share (raises ConfigError when it would be invalid)."""
    if share.preset not in PRESETS:
        raise ConfigError(f"preset {share.preset!r}: one of {', '.join(PRESETS)}")
    try:
        return Agreement.model_validate({
            "id": f"dsa-{answers.venue_id}-{share.partner}-{today.year}", "provider_venues": [answers.venue_id],
            "partner": share.partner, "purposes": [share.purpose], "event_types": ["ticket.order_placed"],
            "allowed_fields": PRESETS[share.preset], "retention_days": RETENTION_DAYS, "valid_from": today,
            "valid_until": today + timedelta(days=365),
        })
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"share with {share.partner!r} for {share.purpose!r}: {where}: {first['msg']}") from None


def check(answers: Answers, venues_file: Path) -> None:
    """Raise ConfigError for answers that cannot be applied."""
    if not re.match(r"^[a-z0-9][a-z0-9-]{1,62}$", answers.venue_id):
        raise ConfigError(f"venue id {answers.venue_id!r}: 2 to 63 of a-z, 0-9 and '-'")
    if answers.mode not in ("webhook", "csv"):
        raise ConfigError(f"connection {answers.mode!r}: webhook or csv")
    if venues_file.exists() and answers.venue_id in load_venues(venues_file):
        raise ConfigError(f"venue {answers.venue_id!r} already exists in {venues_file}")


def _venue_entry(answers: Answers) -> str:
    entry = yaml.safe_dump([{"id": answers.venue_id, "name": answers.name, "city": answers.city}],
                           allow_unicode=True, sort_keys=False)
    body = "".join("  " + line + "\n" for line in entry.splitlines())
    return f"  # {answers.name}: ticketing {answers.tool} ({answers.mode}), added by `techne init`\n{body}"


def _write_secret(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: the venue has a webhook secret (rotate it by hand)") from None
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def apply(answers: Answers, venues_file: Path, agreements_dir: Path, data_dir: Path,
          today: date | None = None) -> Written:
    """Write the venue entry, its secret and its draft agreements (see module doc)."""
    today = today or date.today()
    check(answers, venues_file)
    drafts = [draft(answers, s, today) for s in answers.shares]
    secret_file = data_dir / "secrets" / f"{answers.venue_id}.whsec"
    if secret_file.exists():
        raise ConfigError(f"{secret_file} already exists: the venue has a webhook secret (rotate it by hand)")
    before = venues_file.read_text(encoding="utf-8") if venues_file.exists() else "venues:\n"
    venues_file.parent.mkdir(parents=True, exist_ok=True)
    venues_file.write_text(before.rstrip("\n") + "\n" + _venue_entry(answers), encoding="utf-8")
    try:
        load_venues(venues_file)
    except ConfigError:
        venues_file.write_text(before, encoding="utf-8")
        raise
    secret = _write_secret(secret_file)
    written = Written(venues_file, secret_file, secret)
    for agreement in drafts:
        path = agreements_dir / "drafts" / f"{agreement.id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = yaml.safe_dump(agreement.model_dump(mode="json", exclude_defaults=False), allow_unicode=True,
                              sort_keys=False)
        path.write_text(f"# DRAFT by `techne init` ({today.isoformat()}): to review with the partner and your DPO.\n"
                        f"# Nothing is shared until it is signed and moved to {agreements_dir}/.\n{body}",
                        encoding="utf-8")
        written.drafts.append(path)
    return written


PUSH_SOURCES = ("secutix", "helloasso")
"""Tools whose own notifications the gateway accepts (``/v1/venues/<id>/sources/<tool>``)."""
POLLED = ("billetweb",)
"""Tools without webhooks that the bus polls (``techne connector poll``)."""


def _connect(answers: Answers, secret_file: Path, lang: str) -> list[str]:
    v, tool, fr = answers.venue_id, answers.tool, lang == "fr"
    if answers.mode == "csv":
        return [f"Exportez vos commandes de {tool} en CSV, vérifiez puis importez : `techne import csv export.csv "
                f"--venue {v} --profile billetterie-fr --dry-run`, puis sans `--dry-run`." if fr else
                f"Export your orders from {tool} as CSV, check then import: `techne import csv export.csv "
                f"--venue {v} --profile billetterie-fr --dry-run`, then without `--dry-run`."]
    if tool in POLLED:
        return [f"{tool} n'envoie pas de webhook : l'opérateur lance `techne connector poll {tool} --venue {v}`."
                if fr else f"{tool} sends no webhooks: the operator runs `techne connector poll {tool} --venue {v}`."]
    if tool in PUSH_SOURCES:
        return [f"Dans {tool}, déclarez la notification vers https://<adresse du bus>/v1/venues/{v}/sources/{tool} ; "
                "ses identifiants vont dans TECHNE_SOURCE_SECRETS (voir docs/demarrer.md)." if fr else
                f"In {tool}, point its notifications to https://<bus address>/v1/venues/{v}/sources/{tool}; its "
                "credentials go to TECHNE_SOURCE_SECRETS (see docs/demarrer.md)."]
    return [f"Dans {tool}, déclarez le webhook https://<adresse du bus>/v1/venues/{v}/events avec le secret "
            f"de {secret_file} (signature Standard Webhooks)." if fr else
            f"In {tool}, register the webhook https://<bus address>/v1/venues/{v}/events with the secret of "
            f"{secret_file} (Standard Webhooks signature)."]


def next_steps(answers: Answers, written: Written, agreements_dir: Path, lang: str = "fr") -> str:
    """What to do next, numbered, in ``lang`` (never repeats the secret)."""
    v, fr = answers.venue_id, lang == "fr"
    placeholder = f"<{'contenu de' if fr else 'content of'} {written.secret_file}>"
    env = f"TECHNE_VENUE_SECRETS='{{\"{v}\": [\"{placeholder}\"]}}'"
    drafts = ", ".join(map(str, written.drafts))
    if fr:
        steps = [f"Relisez le(s) projet(s) d'accord avec le partenaire et votre DPO : {drafts}" if drafts
                 else "Aucun partage demandé : aucun projet d'accord écrit.",
                 f"Une fois signé, déplacez chaque accord dans {agreements_dir}/ "
                 "puis lancez `techne agreements check`.",
                 f"Donnez le secret à la passerelle : {env}",
                 *_connect(answers, written.secret_file, lang),
                 f"Vérifiez ce qui est partagé, pourquoi, avec qui : `techne report sharing --venue {v}`.",
                 f"Pour arrêter un partage, retirez l'accord de {agreements_dir}/ (voir docs/demarrer.md)."]
        title = "Prochaines étapes"
    else:
        steps = [f"Review the draft agreement(s) with the partner and your DPO: {drafts}" if drafts
                 else "No sharing requested: no draft agreement written.",
                 f"Once signed, move each agreement to {agreements_dir}/ and run `techne agreements check`.",
                 f"Give the secret to the gateway: {env}",
                 *_connect(answers, written.secret_file, lang),
                 f"See what is shared, why, with whom: `techne report sharing --venue {v}`.",
                 f"To stop a share, remove its agreement from {agreements_dir}/ (see docs/demarrer.md)."]
        title = "Next steps"
    return "\n".join([title, "-" * len(title), *(f"{i}. {s}" for i, s in enumerate(steps, 1))])
