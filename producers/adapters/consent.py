"""Consent from the sources venues already have: vendor opt-in answers -> consent events (pure).

A vendor carries a person's opt-ins as answers to questions the venue set up itself: HelloAsso
custom fields on the order form, Billetweb and Weezevent custom questions, SecuTix contact
opt-ins. Only the venue knows which question means which purpose and which named partners the
person was shown, so that is configuration (``deploy/consent-sources.yaml``,
``TECHNE_CONSENT_SOURCES_FILE``)::

    venues:
      lieu-unique:
        helloasso:
          collection_point: "helloasso:formulaire-commande"
          questions:
            "J'accepte que mes réservations soient partagées avec l'Observatoire des publics":
              purpose: cross_venue_analytics
              recipients: [observatoire]
              recipient_list_version: "2026-09"
          ignore: ["Régime alimentaire"]     # questions that are not consent

Contract of :func:`consent_events`:

* a *yes* answer (``oui``, ``yes``, ``1``, ``true``, ``x``… or the question's own ``yes`` list)
  gives ``consent.granted``, a *no* (``non``, ``0``, empty…) ``consent.withdrawn`` — a box left
  unticked on a later order withdraws what an earlier one granted (the conservative reading);
* a source with no mapping for the venue yields no consent event (its orders still flow, and
  stay unshared: consent is default-deny);
* once a venue maps a source, every question it sends must be mapped or ignored: an unknown
  question, or an answer that is neither yes nor no, raises :class:`UnmappedQuestion` (the
  delivery is refused, nothing of it written) with a French and an English message naming the
  question (a form's label, never a person's answer);
* the consent event comes from the same object as the order and precedes it, with the same
  customer identifiers: same raw-topic key, so the worker applies it before the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import ConfigError, Refused
from producers.adapters.base import OptIn, SourceEvent
from schemas.models import Purpose

YES = frozenset({"oui", "o", "yes", "y", "1", "x", "true", "vrai", "on", "accepte", "j'accepte", "checked"})
NO = frozenset({"non", "n", "no", "0", "", "false", "faux", "off", "refuse", "unchecked"})


class QuestionMapping(BaseModel):
    """What a yes / no to one question means."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    purpose: str
    recipients: list[str] = Field(min_length=1)
    recipient_list_version: str = Field(min_length=1, max_length=64)
    yes: list[str] = Field(default_factory=list, description="Extra answers meaning yes (case-insensitive).")
    no: list[str] = Field(default_factory=list, description="Extra answers meaning no (case-insensitive).")
    wording_version: str | None = None

    @field_validator("purpose")
    @classmethod
    def _known_purpose(cls, v: str) -> str:
        known = [p.value for p in Purpose]
        if v not in known:
            raise ValueError(f"unknown purpose '{v}' (known: {', '.join(known)})")
        return v


class SourceMapping(BaseModel):
    """One venue's mapping for one source."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    questions: dict[str, QuestionMapping] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    collection_point: str | None = Field(None, max_length=128)


class PreferenceCentre(BaseModel):
    """What the preference centre (producers/gateway/preferences.py) records with each choice."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    recipient_list_version: str = Field("agreements", min_length=1, max_length=64)
    wording_version: str | None = Field(None, max_length=64)
    link_ttl_days: int = Field(30, ge=1, le=400, description="How long a signed link stays valid.")


class ConsentSources(BaseModel):
    """Every venue's mappings: ``venues[venue][source]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    venues: dict[str, dict[str, SourceMapping]] = Field(default_factory=dict)
    partners: dict[str, str] = Field(default_factory=dict, description="Partner names shown to people.")
    preference_centre: PreferenceCentre = Field(default_factory=lambda: PreferenceCentre.model_validate({}))

    def mapping(self, venue_id: str, source: str) -> SourceMapping | None:
        return self.venues.get(venue_id, {}).get(source)

    def check_recipients(self, partners_of_venue: dict[str, set[str]]) -> None:
        """:class:`ConfigError` if a mapping names a partner with no agreement with that venue
        (``partners_of_venue`` has every known venue; mappings of other venues are not used)."""
        for venue, sources in self.venues.items():
            if venue not in partners_of_venue:
                continue
            for source, mapping in sources.items():
                for question, q in mapping.questions.items():
                    unknown = set(q.recipients) - partners_of_venue.get(venue, set())
                    if unknown:
                        raise ConfigError(f"consent sources: {venue}/{source} question '{question[:60]}' names "
                                          f"{sorted(unknown)}, who have no agreement with {venue}")


def load_consent_sources(path: Path) -> ConsentSources:
    """The mappings file; an absent file means no source is mapped. :class:`ConfigError` if invalid."""
    if not path.exists():
        return ConsentSources()
    try:
        return ConsentSources.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValueError) as exc:  # ValueError: pydantic's, a date 2028-02-30, not UTF-8
        raise ConfigError(f"{path}: {exc}") from exc


class UnmappedQuestion(Refused):
    """A question (or an answer) the venue's mapping does not cover; ``fr`` / ``en`` messages.
    Permanent (the same delivery is refused again until the mapping names the question)."""

    def __init__(self, source: str, questions: Sequence[str], *, answer_not_understood: bool = False) -> None:
        names = ", ".join(f"« {q[:80]} »" for q in questions)
        if answer_not_understood:
            self.fr = (f"{source} : réponse ni oui ni non à la question {names} ; ajoutez-la à `yes` ou `no` "
                       "de cette question dans deploy/consent-sources.yaml. Rien n'a été enregistré.")
            self.en = (f"{source}: an answer to {names} is neither yes nor no; add it to that question's "
                       "`yes` or `no` in deploy/consent-sources.yaml. Nothing was written.")
        else:
            self.fr = (f"{source} : question non reliée à une finalité : {names}. Déclarez-la (finalité, "
                       "destinataires, version de la liste) ou ignorez-la dans deploy/consent-sources.yaml. "
                       "Rien n'a été enregistré.")
            self.en = (f"{source}: question(s) not mapped to a purpose: {names}. Map them (purpose, recipients, "
                       "recipient list version) or list them under `ignore` in deploy/consent-sources.yaml. "
                       "Nothing was written.")
        super().__init__(self.en)
        self.questions = list(questions)


def _answer(value: Any, q: QuestionMapping) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in YES or text in {a.lower() for a in q.yes}:
        return True
    if text in NO or text in {a.lower() for a in q.no}:
        return False
    return None


def consent_events(source: str, opt_ins: Sequence[OptIn], mapping: SourceMapping | None) -> list[SourceEvent]:
    """The consent events of one delivery's opt-in answers (see the module contract)."""
    if mapping is None or not opt_ins:
        return []
    unknown = sorted({o.question for o in opt_ins if o.question not in mapping.questions
                      and o.question not in mapping.ignore})
    if unknown:
        raise UnmappedQuestion(source, unknown)
    out: list[SourceEvent] = []
    for o in opt_ins:
        q = mapping.questions.get(o.question)
        if q is None:
            continue
        granted = _answer(o.answer, q)
        if granted is None:
            raise UnmappedQuestion(source, [o.question], answer_not_understood=True)
        state = "granted" if granted else "withdrawn"
        payload = {"type": f"consent.{state}", "occurred_at": o.occurred_at, "source_system": source,
                   "customer": o.customer, "purpose": q.purpose, "recipients": sorted(q.recipients),
                   "recipient_list_version": q.recipient_list_version,
                   "collection_point": mapping.collection_point or source, "collection_method": "checkbox",
                   "proof_ref": f"{source}:{o.key}"[:512]}
        if q.wording_version:
            payload["wording_version"] = q.wording_version
        out.append(SourceEvent(payload, f"{o.key}:consent:{q.purpose}:{q.recipient_list_version}:{state}"))
    return out
