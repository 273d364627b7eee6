"""CSV profile conversion: French dates, decimal commas, labels, encodings (pure)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from producers.csv_profiles import CellError, FieldSpec, build_event, convert, load_profile

PROFILE = load_profile("billetterie-fr")
PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("raw", "expected"), [
    ("25/12/2026 20:30", datetime(2026, 12, 25, 20, 30, tzinfo=PARIS)),
    ("25/12/2026 20h30", datetime(2026, 12, 25, 20, 30, tzinfo=PARIS)),
    ("25 déc. 2026 à 20h30", datetime(2026, 12, 25, 20, 30, tzinfo=PARIS)),
    ("3 mars 2026 20h", datetime(2026, 3, 3, 20, 0, tzinfo=PARIS)),
    ("01/07/2026", datetime(2026, 7, 1, tzinfo=PARIS)),
])
def test_french_dates_in_the_profile_time_zone(raw: str, expected: datetime) -> None:
    assert convert(raw, FieldSpec(column="d", type="datetime"), PROFILE) == expected.isoformat()


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-12-25 20:30:00", datetime(2026, 12, 25, 20, 30, tzinfo=PARIS)),  # ISO 8601, whatever the profile
    ("2026-12-25T20:30", datetime(2026, 12, 25, 20, 30, tzinfo=PARIS)),
    ("2026-12-25T19:30:00Z", datetime(2026, 12, 25, 20, 30, tzinfo=PARIS)),
    ("2026-07-01", datetime(2026, 7, 1, tzinfo=PARIS)),
    ("46381.8541666667", datetime(2026, 12, 25, 20, 30, tzinfo=PARIS)),  # an Excel serial (cell not date-formatted)
    ("46204", datetime(2026, 7, 1, tzinfo=PARIS)),
])
def test_iso_dates_and_excel_serial_numbers_are_read(raw: str, expected: datetime) -> None:
    got = datetime.fromisoformat(convert(raw, FieldSpec(column="d", type="datetime"), PROFILE))
    assert got == expected  # the same instant (a naive one read in the profile's time zone)


@pytest.mark.parametrize("raw", ["12", "2026", "123456", "2026-13-01", "46381,5,1"])
def test_other_numbers_in_a_date_column_are_still_cell_errors(raw: str) -> None:
    with pytest.raises(CellError, match="not a date"):
        convert(raw, FieldSpec(column="d", type="datetime"), PROFILE)


@pytest.mark.parametrize(("raw", "minor"), [("45,50", 4550), ("1 234,50 €", 123450), ("1.234,5", 123450),
                                            ("12", 1200), ("0,00", 0), ("9\u00a0000,00", 900000),
                                            ("1,234.50", 123450), ("12.50", 1250), ("1.234.567,8", 123456780),
                                            ("1,234,567.8", 123456780), ("1'234,50", 123450)])
def test_money_with_decimal_commas(raw: str, minor: int) -> None:
    assert convert(raw, FieldSpec(column="m", type="money"), PROFILE) == minor


@pytest.mark.parametrize("raw", ["1,2.3,4", "1.2,3.4", "12,5,0"])
def test_a_number_whose_separators_contradict_each_other_is_a_cell_error(raw: str) -> None:
    with pytest.raises(CellError, match="not a number"):
        convert(raw, FieldSpec(column="m", type="money"), PROFILE)


def test_bad_cells_give_reasons_without_values() -> None:
    with pytest.raises(CellError) as err:
        convert("quarante", FieldSpec(column="m", type="money"), PROFILE)
    assert "quarante" not in str(err.value)
    with pytest.raises(CellError):
        convert("32/13/2026", FieldSpec(column="d", type="datetime"), PROFILE)
    with pytest.raises(CellError, match="unknown label"):
        convert("Tarif secret", PROFILE.fields["tariff"], PROFILE)


@pytest.mark.parametrize("kind", ["money", "int", "decimal"])
@pytest.mark.parametrize("raw", ["NaN", "-sNaN", "Infinity", "-inf", "1e30", "1e5000", "9" * 60, "1e400000"])
def test_numbers_that_are_not_finite_or_too_large_are_cell_errors(kind: str, raw: str) -> None:
    """A cell error (a row refused, the rest of the file imported), never an unhandled
    InvalidOperation / OverflowError, nor an integer of thousands of digits."""
    with pytest.raises(CellError) as err:
        convert(raw, FieldSpec(column="n", type=kind), PROFILE)  # type: ignore[arg-type]
    assert raw not in str(err.value) and err.value.fr != err.value.en


def test_a_row_with_an_impossible_amount_is_a_row_error() -> None:
    row = {"N° commande": "C1", "Date de commande": "02/11/2026 10:15", "E-mail": "a@b.fr", "Spectacle": "Tosca",
           "Code séance": "S1", "Date de séance": "05/12/2026 20:00", "Genre": "Opéra", "Tarif": "Réduit",
           "Canal": "Guichet", "Nb places": "1e30", "Montant TTC": "NaN"}
    event, errors = build_event(row, PROFILE)
    assert [column for column, _ in errors] == ["Nb places", "Montant TTC"]
    assert "quantity" not in event and "amount_minor" not in event


def test_build_event_nests_fields_and_collects_errors() -> None:
    row = {"N° commande": "C1", "Date de commande": "02/11/2026 10:15", "N° client": "", "E-mail": "a@b.fr",
           "Code postal": "92330", "Spectacle": "Tosca", "Code séance": "S1", "Date de séance": "bientôt",
           "Salle": "", "Genre": "Opéra", "Tarif": "Réduit", "Canal": "Guichet", "Nb places": "2",
           "Montant TTC": "45,00"}
    event, errors = build_event(row, PROFILE)
    assert event["customer"] == {"email": "a@b.fr", "postal_code": "92330"}
    assert (event["discipline"], event["tariff"], event["channel"], event["amount_minor"]) == \
        ("opera", "reduit", "box_office", 4500)
    assert "hall" not in event
    assert errors == [("Date de séance", errors[0][1])]


def test_encodings_latin1_and_utf8_bom() -> None:
    """Files are decoded by producers.spreadsheet (csv_profiles' own decode() was left unused)."""
    from producers.spreadsheet import decode_text

    text = "Spectacle;Montant\nLe Misanthrope – Molière;12,50 €\n"
    assert decode_text(text.encode("cp1252")) == (text, "cp1252")
    assert decode_text(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8")
    assert decode_text(text.encode("utf-8")) == (text, "utf-8")


@pytest.mark.parametrize("written", ["Réduit", "réduit", "RÉDUIT", " Réduit ", unicodedata.normalize("NFD", "Réduit")])
def test_a_label_is_found_whatever_its_case_spaces_or_accent_encoding(written: str) -> None:
    spec = FieldSpec(column="Tarif", map={"Réduit": "reduit", "Plein tarif": "plein"})
    assert convert(written, spec, PROFILE) == "reduit"
    assert convert("plein\u00a0TARIF", spec, PROFILE) == "plein"
    assert convert(f"{written}, Plein  tarif", FieldSpec(column="t", type="list", map=spec.map), PROFILE) == [
        "reduit", "plein"]
