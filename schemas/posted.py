"""The base of every model of what venues post (:class:`Posted`), reading values as the sender
means them:

* an empty or blank string where a value is optional means "no value" (ticketing exports and
  vendor payloads write ``""`` for a missing postal code, hall or e-mail): the field is absent, as
  if not sent; a required field left blank is still refused by its own constraints, naming it;
* ``true``/``false`` is a value only for a true/false field: pydantic's lax mode reads ``true`` as
  ``1`` (``"quantity": true`` was one ticket), here it is refused naming the field.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, model_validator


def _admits_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    return any(_admits_bool(arg) for arg in get_args(annotation))


class _TrueOrFalse:
    """What ``true``/``false`` becomes where it is no value: no field type accepts it, so the
    field's own error names the field (a before-validator cannot name the field itself)."""


class Posted(BaseModel):
    """A model of posted JSON (see module doc)."""

    @model_validator(mode="before")
    @classmethod
    def _as_meant(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        read: dict[str, Any] = {}
        for key, value in data.items():
            field = fields.get(key)
            if field is not None and isinstance(value, str) and not value.strip() and not field.is_required():
                continue  # blank = absent
            if field is not None and isinstance(value, bool) and not _admits_bool(field.annotation):
                value = _TrueOrFalse()
            read[key] = value
        return read
