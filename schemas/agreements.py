"""Data-sharing agreements as code: YAML files validated at load.

An agreement names a provider venue list, a partner, purposes, event types, the fields the
partner may receive (a projection: everything else is removed; each field must be shareable
for at least one of the agreement's event types and applies to every one that has it), a
pseudonym domain (the partner's own by default, the same for all its event types), a retention
and validity dates, and the smallest number of persons a published insight cell may count
(``min_cell_size``, k = 10 by default). :func:`load_agreements` raises
:class:`ConfigError` naming the file and field for anything invalid or contradictory; nothing
is routed without an agreement.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError
from schemas.models import Purpose
from schemas.sharing import PROJECTABLE_BY_TYPE

PartnerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")]
RESERVED_DATABASES = frozenset({"audit", "system", "default", "information_schema"})
"""ClickHouse databases a partner id may not name: the audit store's and the server's own."""
VENUE_DATABASE_PREFIX = "venue_"
"""Databases of the venues' own stores (``venue_<venue>``): never a partner's."""
EVENT_TYPES = frozenset(PROJECTABLE_BY_TYPE)
"""The event types an agreement may share: every type of every kind of :mod:`schemas.kinds`
(order lifecycle, e-mail clicks and campaign events, scans, page views, content interactions,
ad spend)."""


class Agreement(BaseModel):
    """One data-sharing agreement (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,80}$")]
    provider_venues: Annotated[list[str], Field(min_length=1)]
    partner: PartnerId
    purposes: Annotated[list[Purpose], Field(min_length=1)]
    event_types: Annotated[list[str], Field(min_length=1)]
    allowed_fields: list[str]
    pseudonym_domain: PartnerId | None = None
    retention_days: Annotated[int, Field(ge=1, le=3650)]
    valid_from: date
    valid_until: date
    legal_basis: str = "consent"
    min_cell_size: Annotated[int, Field(ge=5, le=1000)] = 10
    """k of small-cell protection: no insight published from these rows counts fewer persons."""

    @model_validator(mode="after")
    def _coherent(self) -> Agreement:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        bad_types = set(self.event_types) - EVENT_TYPES
        if bad_types:
            raise ValueError(f"unknown event_types: {sorted(bad_types)}; shareable: {sorted(EVENT_TYPES)}")
        projectable = frozenset().union(*(PROJECTABLE_BY_TYPE[t] for t in self.event_types))
        unknown = set(self.allowed_fields) - projectable
        if unknown:
            raise ValueError(f"allowed_fields cannot be shared (unknown for these event_types, or an identifier that "
                             f"is never shared raw): {sorted(unknown)}; shareable: {sorted(projectable)}")
        if Purpose.AUDIENCE_MEASUREMENT in self.purposes:
            raise ValueError("audience_measurement is consent-exempt and venue-internal: never shared with a partner")
        database = self.partner.replace("-", "_")  # the partner's ClickHouse database (sinks.ddl.database_name)
        if database in RESERVED_DATABASES or database.startswith(VENUE_DATABASE_PREFIX):
            raise ValueError(f"partner {self.partner!r} would share the ClickHouse database {database!r} of the bus "
                             f"itself (audit, system) or of a venue's own store (venue_<venue>): choose another id")
        return self

    @property
    def domain(self) -> str:
        """The pseudonym domain: the partner's own unless the agreement names a shared one."""
        return self.pseudonym_domain or f"partner:{self.partner}"

    def active_on(self, when: datetime) -> bool:
        return self.valid_from <= when.date() <= self.valid_until

    def covers(self, venue_id: str, event_type: str) -> bool:
        return venue_id in self.provider_venues and event_type in self.event_types


def load_agreements(directory: Path, known_venues: set[str] | None = None) -> list[Agreement]:
    """Load every ``*.yaml`` under ``directory``; raise ConfigError naming file and field, or the
    directory if it does not exist (an empty directory is valid: no agreement yet)."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: agreements directory does not exist (TECHNE_AGREEMENTS_DIR; "
                          f"a relative path is read from the working directory {Path.cwd()})")
    agreements: list[Agreement] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            agreement = Agreement.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path}: {where}") from exc
        except ValueError as exc:  # PyYAML's date 2028-02-30, a file not in UTF-8
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if known_venues is not None:
            unknown = set(agreement.provider_venues) - known_venues
            if unknown:
                raise ConfigError(f"{path}: provider_venues: unknown venues {sorted(unknown)}")
        agreements.append(agreement)
    ids = [a.id for a in agreements]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{directory}: duplicate agreement ids")
    return agreements


def partners(agreements: list[Agreement]) -> list[str]:
    return sorted({a.partner for a in agreements})
