"""Keyed digests: the standard HMAC-SHA256, separated by domain; one identifier per person
however the venue writes the address or the number."""

import hashlib
import hmac
import unicodedata

import pytest

from core.identity import keyed_digest, normalize_email, normalize_phone, subject_identifier


def test_keyed_digest_is_the_standard_hmac_sha256_of_domain_and_value() -> None:
    expected = hmac.new(b"secret", b"pseudonym:observatoire\x1femail:a@b.fr", hashlib.sha256).hexdigest()
    assert keyed_digest(b"secret", "pseudonym:observatoire", "email:a@b.fr") == expected
    assert keyed_digest(b"other", "pseudonym:observatoire", "email:a@b.fr") != expected
    assert keyed_digest(b"secret", "pseudonym:reseau-danse", "email:a@b.fr") != expected


@pytest.mark.parametrize("written", [
    "lea@théâtre.fr", "LEA@THÉÂTRE.FR", " lea@xn--thtre-4qa2c.fr ", "Lea@XN--THTRE-4QA2C.FR",
    unicodedata.normalize("NFD", "lea@théâtre.fr"),  # decomposed accents, as macOS exports write them
])
def test_one_address_however_written_is_one_identifier(written: str) -> None:
    """An IDN domain in Unicode or in its ASCII (punycode) form, accents composed or decomposed:
    one person, one subject reference (else a withdrawal recorded under one spelling would not
    stop the events sent under the other)."""
    assert normalize_email(written) == "lea@théâtre.fr"
    assert subject_identifier({"email": written}, "v") == "email:lea@théâtre.fr"


def test_accented_local_parts_are_composed_and_ascii_addresses_unchanged() -> None:
    assert normalize_email(unicodedata.normalize("NFD", "Léa@Exemple.FR")) == "léa@exemple.fr"
    assert normalize_email(" A.B+x@Exemple.fr") == "a.b+x@exemple.fr"
    assert normalize_email("a@xn--invalid-.fr") == "a@xn--invalid-.fr"  # not punycode: kept as written


@pytest.mark.parametrize(("national", "e164"), [
    ("06 12 34 56 78", "+33612345678"), ("01 23 45 67 89", "+33123456789"),
    ("0590 12 34 56", "+590590123456"), ("0690 12 34 56", "+590690123456"),  # Guadeloupe
    ("0596 30 12 34", "+596596301234"), ("0696 12 34 56", "+596696123456"),  # Martinique
    ("0594 12 34 56", "+594594123456"), ("0639 01 23 45", "+262639012345"),  # Guyane, Mayotte
    ("0692 12 34 56", "+262692123456"), ("0262 20 12 34", "+262262201234"),  # La Réunion
    ("0269 61 23 45", "+262269612345"),  # Mayotte
    ("+590 590 12 34 56", "+590590123456"),
])
def test_french_numbers_in_national_form_overseas_included(national: str, e164: str) -> None:
    assert normalize_phone(national) == e164


@pytest.mark.parametrize("bad", ["0000000000", "12", "abc", "0890 12", "+33 0590 12 34 56 78 9"])
def test_what_is_no_phone_number_stays_refused(bad: str) -> None:
    assert normalize_phone(bad) is None
