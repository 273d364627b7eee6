"""The base of every model of what venues post: an empty or blank string where a value is
optional means "no value" (ticketing exports and vendor payloads write ``""`` for a missing
postal code, hall or e-mail), so the field is absent, as if not sent; a required field left
blank is still refused by its own constraints, naming it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator


class Posted(BaseModel):
    """A model of posted JSON whose optional fields read a blank string as absent."""

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: v for k, v in data.items()
                if not (isinstance(v, str) and not v.strip() and k in fields and not fields[k].is_required())}
