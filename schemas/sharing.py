"""What a partner may receive of each shareable event type: facts of the catalogue, not of a stage.

The plan of a partner-facing schema follows from its privacy tags (``techne.privacy``, see
:mod:`schemas.privacy`): a field tagged ``none`` is copied when the agreement allows it, a field
carrying ``techne.generalize`` is computed by the named generalizer, every other field is never
shared. :data:`PROJECTABLE_BY_TYPE` (what an agreement covering a type may list in
``allowed_fields``) follows from the same plans, so an agreement cannot even name a raw
identifier. The worker's pseudonymization step (``streams.steps.pseudonymize``) executes these
plans; agreements (:mod:`schemas.agreements`) and sink tables read them.
"""

from __future__ import annotations

from schemas import CATALOGUE
from schemas.kinds import KINDS, MEASUREMENT_SCHEMA
from schemas.kinds import SHARED_SCHEMA_OF_TYPE as SHARED_SCHEMA_OF_TYPE

ALWAYS = ("event_id", "event_type", "occurred_at", "received_at", "venue_id", "agreement_id", "purpose",
          "subject_pseudonym", "pseudonym_key_version", "status", "order_ref")
"""Columns every partner record carries, whatever the agreement's field list (``status`` and
``order_ref``: ticket orders only, see :mod:`schemas.kinds`)."""

GENERALIZER_NAMES = frozenset({"departement", "age_band", "ip_prefix", "device_class", "url_path", "url_host",
                               "city", "country"})
"""The generalizers a schema may name in ``techne.generalize.with`` (implemented by the worker)."""


def _plan(schema_name: str) -> dict[str, tuple[str, str | None]]:
    """field -> ("copy", None) | ("generalize", generalizer) | ("never", None)."""
    plan: dict[str, tuple[str, str | None]] = {}
    for field in CATALOGUE.entry(schema_name).raw["fields"]:
        name = field["name"]
        if name in ALWAYS:
            continue
        rule = field.get("techne.generalize")
        if rule is not None and rule.get("with") in GENERALIZER_NAMES:
            plan[name] = ("generalize", str(rule["with"]))
        elif field.get("techne.privacy") == "none":
            plan[name] = ("copy", None)
        else:
            plan[name] = ("never", None)
    return plan


PLANS = {name: _plan(name) for name in {*(k.schema for k in KINDS), MEASUREMENT_SCHEMA}}
"""The plan of every partner-facing schema (every kind's), and of exempt measurement's."""
SOURCES = {f["name"]: str(f["techne.generalize"]["from"]) for name in PLANS for f in CATALOGUE.entry(name).raw["fields"]
           if "techne.generalize" in f}
PROJECTABLE_BY_TYPE = {
    event_type: frozenset(name for name, (how, _) in PLANS[schema].items() if how != "never")
    for event_type, schema in SHARED_SCHEMA_OF_TYPE.items()
}
PROJECTABLE = PROJECTABLE_BY_TYPE["ticket.order_placed"]
