"""The ``customer`` block of the JSON events venues post: who the event is about.

It becomes the Avro ``subject`` record (``org.techne.common.Subject``, same field names) and
is normalized on the way in (a blank value is an absent one, :mod:`schemas.posted`): e-mail
lower-cased, phone numbers parsed with libphonenumber
(French numbers without a country code are accepted) and written in E.164. Which identifiers
are required depends on the event (the schema's ``techne.customer`` attribute):

* :class:`Customer` (ticketing, consent, campaigns…): an e-mail or a customer id;
* :class:`VisitorCustomer` (web events): an e-mail, a customer id, a visitor id or a phone;
* :class:`OptionalCustomer` (door scans): possibly nothing at all.

A test keeps the fields in lockstep with the latest Subject schema.
"""

from __future__ import annotations

import datetime
from typing import Annotated

import pycountry
from pydantic import ConfigDict, Field, field_validator, model_validator

from core.identity import normalize_email, normalize_phone
from schemas.posted import Posted


def country_code(value: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country written as its alpha-2, alpha-3 or numeric code
    or its English name, in any case (``fr``, ``FRA``, ``250``, ``France`` -> ``FR``; HelloAsso
    sends alpha-3); ``None`` when it names no country (pycountry's ISO 3166 tables)."""
    text = value.strip()
    if not text:
        return None
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None


class OptionalCustomer(Posted):
    """Identifiers of a person as the venue knows them; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    customer_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    postal_code: Annotated[str, Field(pattern=r"^[0-9A-Za-z \-]{2,10}$")] | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None
    first_name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    last_name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    visitor_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    country_code: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    birth_date: datetime.date | None = None
    ip_address: Annotated[str, Field(max_length=45)] | None = None
    user_agent: Annotated[str, Field(max_length=1024)] | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return normalize_email(v) if v else v

    @field_validator("country_code", mode="before")
    @classmethod
    def _alpha2(cls, v: object) -> object:
        if not isinstance(v, str) or not v.strip():
            return v
        code = country_code(v)
        if code is None:
            raise ValueError("not an ISO 3166 country (alpha-2 such as FR, alpha-3 such as FRA, or its English name)")
        return code

    @field_validator("phone")
    @classmethod
    def _e164(cls, v: str | None) -> str | None:
        if not v:
            return v
        e164 = normalize_phone(v)
        if e164 is None:
            raise ValueError("not a valid phone number")
        return e164


class Customer(OptionalCustomer):
    """A person known by an e-mail or a customer id (at least one)."""

    @model_validator(mode="after")
    def _identified(self) -> Customer:
        if not (self.email or self.customer_id):
            raise ValueError("customer needs an email or a customer_id")
        return self


class VisitorCustomer(OptionalCustomer):
    """A web visitor: an e-mail, a customer id, a visitor id or a phone (at least one)."""

    @model_validator(mode="after")
    def _identified(self) -> VisitorCustomer:
        if not (self.email or self.customer_id or self.visitor_id or self.phone):
            raise ValueError("customer needs an email, a customer_id, a visitor_id or a phone")
        return self
