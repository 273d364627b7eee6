"""Reading venue exports (pure): CSV dialects and encodings detected, XLSX accepted, the real
cause named when columns are missing, unbalanced quotes caught, row errors in French and English."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from collections.abc import Callable
from datetime import datetime

import pytest
from openpyxl import Workbook

from producers.csv_import import check_columns, read_profile_table, validate_rows
from producers.csv_profiles import load_profile
from producers.row_messages import french
from producers.spreadsheet import TableError, cell_text, read_table

PROFILE = load_profile("billetterie-fr")
HEADER = ["N° commande", "Date de commande", "N° client", "E-mail", "Code postal", "Spectacle", "Code séance",
          "Date de séance", "Salle", "Genre", "Tarif", "Canal", "Nb places", "Montant TTC"]
GOOD = ["C1", "02/11/2026 10:15", "", "lea@exemple.fr", "92330", "Le Misanthrope – Molière", "MIS-1",
        "28/11/2026 20h30", "Grande salle", "Théâtre", "Plein", "Internet", "2", "45,00"]
KEY = b"k" * 32


def csv_bytes(rows: list[list[str]], delimiter: str = ";", encoding: str = "utf-8") -> bytes:
    def cell(c: str) -> str:
        return f'"{c}"' if delimiter in c else c

    return "\r\n".join(delimiter.join(cell(c) for c in r) for r in rows).encode(encoding) + b"\r\n"


@pytest.mark.parametrize(("delimiter", "encoding", "found"), [
    (";", "cp1252", "cp1252"), (";", "utf-8", "utf-8"), (",", "utf-8", "utf-8"), ("\t", "cp1252", "cp1252"),
    (",", "mac_roman", "mac_roman"),
])
def test_delimiter_and_encoding_are_detected(delimiter: str, encoding: str, found: str) -> None:
    amount = "45.00" if delimiter == "," else "45,00"
    data = csv_bytes([HEADER, [*GOOD[:-1], amount], [*GOOD[:-1], amount]], delimiter, encoding)
    table = read_table(data, "ventes.csv")
    assert (table.delimiter, table.encoding, table.header) == (delimiter, found, HEADER)
    assert table.rows[0][1]["Spectacle"] == "Le Misanthrope – Molière" and table.rows[1][0] == 3


def test_comma_file_for_a_semicolon_profile_is_read_and_the_choice_reported() -> None:
    table = read_profile_table(csv_bytes([HEADER, GOOD], ","), "ventes.csv", PROFILE)
    assert table.delimiter == ","
    (fr, en), = table.notes
    assert "séparateur détecté : ','" in fr and "attend ';'" in fr and "delimiter detected: ','" in en
    valid, report = validate_rows(table, PROFILE, "gemeaux", KEY)
    assert len(valid) == 1 and report.errors == []


def test_missing_columns_name_the_delimiter_and_close_names() -> None:
    header = ["N° commande", "Date de commande", "Email", *HEADER[4:]]  # E-mail renamed, N° client dropped
    table = read_table(csv_bytes([header, GOOD[:2] + GOOD[3:]], ","), "ventes.csv")
    with pytest.raises(TableError) as err:
        check_columns(table, PROFILE)
    fr, en = err.value.fr, err.value.en
    assert fr.startswith("colonnes manquantes pour le profil « billetterie-fr » : E-mail, N° client")
    assert "séparateur détecté : ',' ; attendu ';'" in fr and "delimiter detected: ','; expected ';'" in en
    assert "« Email » est-elle la colonne « E-mail » ?" in fr and "is 'Email' the column 'E-mail'?" in en
    assert "lea@exemple.fr" not in fr + en, "no cell value in a message"
    assert str(err.value) == f"{fr} / {en}"


def test_mojibake_header_names_the_encoding() -> None:
    text = ";".join(HEADER).encode("utf-8").decode("cp1252")  # UTF-8 once read as Windows-1252
    table = read_table((text + "\r\n" + ";".join(GOOD) + "\r\n").encode("utf-8"), "ventes.csv")
    with pytest.raises(TableError, match="en-tête mal décodé"):
        check_columns(table, PROFILE)


def test_an_unbalanced_quote_that_merges_rows_is_refused_naming_the_lines() -> None:
    rows = [";".join(HEADER)] + [";".join([f"C{i}", *GOOD[1:]]) for i in range(1, 7)]
    rows[3] = rows[3].replace("Le Misanthrope", '"Le Misanthrope', 1)  # opened on line 4 ...
    rows[5] = rows[5].replace("Grande salle", 'Grande salle"')  # ... "closed" by a stray quote on line 6
    data = ("\r\n".join(rows) + "\r\n").encode("utf-8")
    with pytest.raises(TableError) as err:
        read_table(data, "ventes.csv")
    assert "les lignes 4 à 6 ont été fusionnées" in err.value.fr and "lines 4 to 6 were merged" in err.value.en


def test_a_misplaced_quote_is_refused_naming_the_lines() -> None:
    rows = [";".join(HEADER)] + [";".join([f"C{i}", *GOOD[1:]]) for i in range(1, 7)]
    rows[3] = rows[3].replace("Le Misanthrope", '"Le Misanthrope', 1)
    rows[5] = rows[5].replace("Grande salle", 'Grande" salle')  # a quote followed by text: not a closing one
    with pytest.raises(TableError) as err:
        read_table(("\r\n".join(rows) + "\r\n").encode("utf-8"), "ventes.csv")
    assert "les lignes 4 à 6" in err.value.fr and "lines 4 to 6" in err.value.en


def test_a_quote_open_until_the_end_of_the_file_is_refused() -> None:
    rows = [";".join(HEADER), ";".join(GOOD), ";".join(["C2", '"02/11/2026', *GOOD[2:]]), ";".join(GOOD)]
    with pytest.raises(TableError, match="guillemet non fermé") as err:
        read_table(("\n".join(rows) + "\n").encode(), "ventes.csv")
    assert "lines 3 to" in err.value.en


def test_a_quoted_cell_with_a_line_break_is_kept() -> None:
    row = [*GOOD[:8], '"Salle Jean Vilar\nniveau 2"', *GOOD[9:]]
    table = read_table(("\n".join([";".join(HEADER), ";".join(row)]) + "\n").encode(), "ventes.csv")
    assert table.rows[0][1]["Salle"] == "Salle Jean Vilar\nniveau 2"


def test_a_row_wider_than_the_header_is_a_row_error() -> None:
    table = read_profile_table(csv_bytes([HEADER, GOOD, [*GOOD, "en trop"]]), "ventes.csv", PROFILE)
    valid, report = validate_rows(table, PROFILE, "gemeaux", KEY)
    assert len(valid) == 1
    (error,) = report.errors
    assert error.line == 3 and "15 cellules pour 14 colonnes" in error.reason_fr and "15 cells" in error.reason


def test_xlsx_is_read_with_its_dates_and_numbers() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(["C1", datetime(2026, 11, 2, 10, 15), None, "lea@exemple.fr", 92330, "Tosca", "T-1",
                  datetime(2026, 11, 28, 20, 30), "Grande salle", "Opéra", "Plein", "Internet", 2, 45.5])
    out = io.BytesIO()
    book.save(out)
    table = read_profile_table(out.getvalue(), "ventes.xlsx", PROFILE)
    assert table.format == "xlsx" and table.rows[0][0] == 2
    valid, report = validate_rows(table, PROFILE, "gemeaux", KEY)
    assert report.errors == [] and len(valid) == 1
    assert "classeur Excel" in table.describe()


def test_old_xls_and_empty_files_are_refused() -> None:
    with pytest.raises(TableError, match="xls"):
        read_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "ventes.xls")
    with pytest.raises(TableError, match="vide"):
        read_table(b"\r\n", "ventes.csv")


def test_row_errors_come_in_french_and_english() -> None:
    bad = [*GOOD[:1], "pas une date", *GOOD[2:10], "Tarif secret", GOOD[11], "deux", GOOD[13]]
    no_id = ["", *GOOD[1:]]
    table = read_profile_table(csv_bytes([HEADER, bad, no_id]), "ventes.csv", PROFILE)
    _, report = validate_rows(table, PROFILE, "gemeaux", KEY)
    by_column = {(e.line, e.column): e for e in report.errors}
    assert by_column[(2, "Date de commande")].message("fr").startswith("date ou heure illisible")
    assert by_column[(2, "Date de commande")].message("en").startswith("not a date/time")
    assert by_column[(2, "Tarif")].message("fr").startswith("libellé inconnu")
    assert by_column[(2, "Nb places")].message("fr") == "pas un nombre"
    assert by_column[(3, "N° commande")].message("fr") == "identifiant vide"
    assert all("pas une date" not in e.reason_fr and "deux" not in e.reason_fr for e in report.errors)


@pytest.mark.parametrize(("en", "fr"), [
    ("Field required", "valeur obligatoire manquante"),
    ("Input should be greater than or equal to 1", "doit être supérieur ou égal à 1"),
    ("Input should be 'web', 'box_office' or 'phone'", "valeur attendue : 'web', 'box_office' ou 'phone'"),
    ("value is not a valid email address: An email address must have an @-sign.", "adresse e-mail invalide"),
    ("Value error, something new", "valeur refusée : something new"),
])
def test_schema_messages_in_french(en: str, fr: str) -> None:
    assert french(en) == fr


def test_cell_text_writes_what_a_french_export_would() -> None:
    assert [cell_text(v) for v in (None, True, 2.0, 45.5, datetime(2026, 1, 2), datetime(2026, 1, 2, 20, 30))] == \
        ["", "oui", "2", "45.5", "02/01/2026", "02/01/2026 20:30:00"]


def test_a_small_table_with_a_multiline_note_holding_a_delimiter_is_kept() -> None:
    data = 'Commande;Note;Montant\nC1;"Merci\nà bientôt; Léa";12,00\nC2;;5,00\n'.encode()
    table = read_table(data, "notes.csv")
    assert [line for line, _ in table.rows] == [2, 4]
    assert table.rows[0][1]["Note"] == "Merci\nà bientôt; Léa"


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("name", ["ventes.csv", "ventes.xlsx"])
def test_a_header_below_title_lines_is_found_and_the_lines_above_ignored(name: str) -> None:
    rows = [["Export des ventes du 01/12/2026"], [""], HEADER, GOOD, GOOD]
    data = _xlsx(rows) if name.endswith("xlsx") else csv_bytes(rows)
    table = read_profile_table(data, name, PROFILE)
    assert table.header == HEADER and [line for line, _ in table.rows] == [4, 5]
    (fr, en), = table.notes
    assert "en-tête lu ligne 3" in fr and "header read on line 3" in en
    valid, report = validate_rows(table, PROFILE, "gemeaux", KEY)
    assert len(valid) == 2 and report.errors == []


@pytest.mark.parametrize("name", ["ventes.csv", "ventes.xlsx"])
def test_a_column_the_profile_reads_named_twice_is_refused_naming_it(name: str) -> None:
    rows = [[*HEADER, "E-mail"], [*GOOD, ""]]  # the second, empty, E-mail would erase the first
    data = _xlsx(rows) if name.endswith("xlsx") else csv_bytes(rows)
    with pytest.raises(TableError) as err:
        read_profile_table(data, name, PROFILE)
    assert "« E-mail » figure 2 fois (colonnes 4 et 15)" in err.value.fr
    assert "'E-mail' appears 2 times (columns 4 and 15)" in err.value.en


def test_a_column_the_profile_ignores_named_twice_keeps_its_first_cell() -> None:
    rows = [[*HEADER, "Commentaire", "Commentaire"], [*GOOD, "premier", "second"]]
    table = read_profile_table(csv_bytes(rows), "ventes.csv", PROFILE)
    assert table.rows[0][1]["Commentaire"] == "premier" and table.rows[0][1]["E-mail"] == "lea@exemple.fr"


def test_a_comma_file_with_a_title_line_is_cut_on_its_commas() -> None:
    rows = [["Export des ventes", "saison 2026"], [*HEADER[:-1], "Montant TTC"], [*GOOD[:-1], "45.00"]]
    table = read_profile_table(csv_bytes(rows, ","), "ventes.csv", PROFILE)
    assert table.delimiter == "," and table.header == HEADER and table.rows[0][0] == 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_excel_unicode_text_exports_are_read(encoding: str) -> None:
    """Excel's « Texte Unicode (*.txt) »: UTF-16 with its BOM, tab-separated (UTF-16/32 without a
    BOM too: told apart by the NUL bytes of its ASCII characters)."""
    text = "\r\n".join("\t".join(row) for row in [HEADER, GOOD]) + "\r\n"
    table = read_profile_table(text.encode(encoding), "ventes.txt", PROFILE)
    assert table.header == HEADER and table.rows[0][1]["Spectacle"] == "Le Misanthrope – Molière"
    assert table.encoding is not None and table.encoding.startswith(("utf-16", "utf-32"))
    valid, report = validate_rows(table, PROFILE, "gemeaux", KEY)
    assert len(valid) == 1 and report.errors == []


@pytest.mark.parametrize("rename", [
    lambda h: h.upper(), lambda h: h.replace(" ", "\u00a0"), lambda h: h.replace(" ", "  "),
    lambda h: unicodedata.normalize("NFD", h), lambda h: f" {h}\u202f",
])
def test_column_names_differing_only_in_case_spaces_or_accent_encoding_are_found(
        rename: Callable[[str], str]) -> None:
    """What a person cannot see (a no-break space, a decomposed accent, a double space) or does not
    mean (« E-MAIL » for « E-mail ») does not make a column missing."""
    for name in ("ventes.csv", "ventes.xlsx"):
        rows = [[rename(h) for h in HEADER], GOOD]
        table = read_profile_table(_xlsx(rows) if name.endswith("xlsx") else csv_bytes(rows), name, PROFILE)
        assert table.header == HEADER
        valid, report = validate_rows(table, PROFILE, "gemeaux", KEY)
        assert len(valid) == 1 and report.errors == []


def test_two_spellings_of_one_read_column_are_one_column_named_twice() -> None:
    with pytest.raises(TableError, match="« E-mail » figure 2 fois"):
        read_profile_table(csv_bytes([[*HEADER, "E-MAIL"], [*GOOD, ""]]), "ventes.csv", PROFILE)


def test_a_formula_without_its_computed_value_is_refused_naming_its_cell() -> None:
    """A workbook written by a program (not saved by Excel or LibreOffice) holds formulas without
    their values: read as empty cells, an e-mail computed by =LOWER(...) silently disappeared."""
    good = [*GOOD[:3], '=LOWER("LEA@EXEMPLE.FR")', *GOOD[4:]]
    with pytest.raises(TableError) as err:
        read_profile_table(_xlsx([HEADER, GOOD, good]), "ventes.xlsx", PROFILE)
    assert "D3" in err.value.fr and "enregistrez" in err.value.fr and "D3" in err.value.en


def test_formulas_with_their_computed_values_are_read() -> None:
    data = _xlsx([HEADER, [*GOOD[:3], '=LOWER("LEA@EXEMPLE.FR")', *GOOD[4:]]])
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as saved:  # as Excel saves it: the formula and its value
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b'<c r="D2"><f>', b'<c r="D2" t="str"><f>').replace(
                    b'</f><v></v>', b"</f><v>lea@exemple.fr</v>")
            saved.writestr(item, content)
    table = read_profile_table(out.getvalue(), "ventes.xlsx", PROFILE)
    assert table.rows[0][1]["E-mail"] == "lea@exemple.fr"


def test_a_formula_whose_computed_value_is_empty_text_is_read() -> None:
    data = _xlsx([HEADER, [*GOOD[:8], '=""', *GOOD[9:]]])
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as saved:  # Excel writes an empty text result as t="str" and <v></v>
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b'<c r="I2"><f>', b'<c r="I2" t="str"><f>')
            saved.writestr(item, content)
    assert read_profile_table(out.getvalue(), "ventes.xlsx", PROFILE).rows[0][1]["Salle"] == ""
