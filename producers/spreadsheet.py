"""Read a venue's export — CSV in any usual dialect, or an Excel workbook — into rows (pure).

:func:`read_table` takes the file's bytes and name (no I/O: the CLI and the console's upload
page call it alike) and returns a :class:`Table`: the header, ``(line, row)`` pairs, and what
was detected (format, encoding, delimiter) so that a person can be told.

- **XLSX** (zip signature or ``.xlsx``/``.xlsm`` name): the first worksheet through openpyxl,
  values as the text a French export would hold (dates ``25/12/2026 20:30:00``, decimal
  numbers as written, booleans ``oui``/``non``); line = the sheet's row number. A formula
  without its computed value (a workbook written by a program) is refused naming its cell. Old ``.xls``
  files are refused with the way out (save as XLSX or CSV).
- **CSV**: the encoding is UTF-16/32 when a BOM or NUL bytes say so (Excel's « Texte Unicode »,
  tab-separated), UTF-8 when the bytes decode as UTF-8 (with or without BOM), else
  charset-normalizer's best guess among the encodings French tools write (Windows-1252, Mac
  Roman, DOS 850); the dialect (delimiter and quote) comes from :class:`csv.Sniffer`. When the
  caller knows the columns it expects (``expected``), the delimiter that finds the most of them
  in the header wins over the sniffer's guess, and the choice is reported.
- **Header row** (:mod:`producers.header_row`): title lines above it are skipped (noted), and a
  column the caller reads that is named twice is refused naming its positions.
- **Unbalanced quotes**: a quote opened and never closed makes the CSV parser swallow the
  following lines into one cell; a cell holding line breaks *and* delimiters is therefore
  refused as "rows merged", naming the lines, and so is a quote still open at the end of the file.

Errors are :class:`TableError`: a ``Refused`` with the reason in French (``.fr``) and English
(``.en``), both on one line in ``str()``. Row contents never appear in a message.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import chain, islice
from typing import Any

from core.errors import Refused
from producers.header_row import (
    SEARCH_ROWS,
    canonical,
    column_key,
    duplicated,
    header_index,
    row_cells,
    skipped_note,
)

DELIMITERS = ";,\t|"
ENCODINGS = ["cp1252", "mac_roman", "cp850"]
"""Candidates when the file is not UTF-8: what French box-office and spreadsheet tools write."""
_NAMES = {";": "';'", ",": "','", "\t": "tabulation", "|": "'|'"}
_NAMES_EN = {";": "';'", ",": "','", "\t": "tab", "|": "'|'"}


class TableError(Refused):
    """The file cannot be read as a table; ``fr`` and ``en`` hold the reason, ``str()`` both (one line)."""

    def __init__(self, fr: str, en: str) -> None:
        super().__init__(f"{fr} / {en}")
        self.fr, self.en = fr, en

    def message(self, lang: str = "fr") -> str:
        return self.en if lang == "en" else self.fr


def delimiter_name(delimiter: str | None, lang: str = "fr") -> str:
    names = _NAMES_EN if lang == "en" else _NAMES
    return names.get(delimiter or "", repr(delimiter))


@dataclass
class Table:
    """Rows of one export and how it was read."""

    header: list[str]
    rows: list[tuple[int, dict[str, str]]]
    format: str  # "csv" or "xlsx"
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)
    """(French, English) remarks on what was detected, e.g. a delimiter other than the expected one."""
    width_errors: list[tuple[int, int]] = field(default_factory=list)
    """(line, cells) of the rows that hold more non-empty cells than the header has columns."""

    def describe(self, lang: str = "fr") -> str:
        """One line: format, encoding, delimiter (for the person who uploaded the file)."""
        if self.format == "xlsx":
            return "classeur Excel (XLSX), première feuille" if lang != "en" else "Excel workbook (XLSX), first sheet"
        if lang == "en":
            return f"CSV, encoding {self.encoding}, delimiter {delimiter_name(self.delimiter, 'en')}"
        return f"CSV, encodage {self.encoding}, séparateur {delimiter_name(self.delimiter)}"


def read_table(data: bytes, filename: str = "", *, expected: Iterable[str] = (), encoding: str = "auto",
               delimiter: str | None = None) -> Table:
    """The table in ``data`` (see module doc). ``encoding``/``delimiter`` force a choice;
    ``expected`` names the columns the caller will look for (helps choose the delimiter)."""
    name = filename.lower()
    if data[:4] == b"PK\x03\x04" or name.endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data, set(expected))
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or name.endswith(".xls"):
        raise TableError("format Excel 97-2003 (.xls) non pris en charge : enregistrez le fichier en XLSX ou en CSV",
                         "Excel 97-2003 (.xls) files are not supported: save the file as XLSX or CSV")
    text, used = decode_text(data, encoding)
    if not text.strip():
        raise TableError("le fichier est vide", "the file is empty")
    return _read_csv(text, used, set(expected), delimiter)


def decode_text(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """``(text, encoding used)``: forced, UTF-8 if it decodes, else the best French candidate."""
    if encoding != "auto":
        codec = "utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding
        try:
            return data.decode(codec), encoding
        except UnicodeDecodeError:
            raise TableError(f"le fichier n'est pas en {encoding} (encodage imposé par le profil)",
                             f"the file is not {encoding} (the profile's encoding)") from None
    wide = _wide_encoding(data)
    if wide is not None:
        try:
            return data.decode(wide), wide
        except UnicodeDecodeError:
            raise TableError(f"le fichier semble en {wide.upper()} mais ne se lit pas ainsi (fichier tronqué ?)",
                             f"the file looks {wide.upper()} but does not decode as such (truncated?)") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=ENCODINGS).best()
    chosen = best.encoding if best is not None else "cp1252"
    return data.decode(chosen, errors="replace"), chosen


_BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16")]


def _wide_encoding(data: bytes) -> str | None:
    """UTF-16 or UTF-32 (Excel's « Texte Unicode »), by its BOM or by the NUL bytes of a first ASCII
    character (a CSV in any other encoding never starts with a NUL byte); None otherwise."""
    codec = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    head = data[:4]
    if codec is None and len(head) == 4 and head.count(0) == 3:
        codec = "utf-32-le" if head[0] else "utf-32-be"
    elif codec is None and len(head) >= 2 and head[:2].count(0) == 1:
        codec = "utf-16-le" if head[0] else "utf-16-be"
    return codec


def _sniff(text: str) -> csv.Dialect | None:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS)  # type: ignore[return-value]
    except csv.Error:
        return None


def _named(text: str, delimiter: str, expected: set[str]) -> int:
    """How many ``expected`` columns the best header candidate names, cut by ``delimiter``."""
    rows = islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), SEARCH_ROWS)
    keys = {column_key(name) for name in expected}
    return max((len(keys & {column_key(c) for c in row}) for row in rows), default=0)


def _choose_delimiter(text: str, expected: set[str], forced: str | None) -> tuple[str, str]:
    """``(delimiter, quotechar)``."""
    if forced is not None:
        return forced, '"'
    dialect = _sniff(text)
    sniffed = dialect.delimiter if dialect is not None else None
    quote = (dialect.quotechar if dialect is not None else None) or '"'
    if expected:
        def found(d: str) -> int:
            return _named(text, d, expected)

        best = max(DELIMITERS, key=lambda d: (found(d), d == sniffed, d == ";"))
        if found(best) > (found(sniffed) if sniffed else -1):
            return best, '"'
    if sniffed is not None:
        return sniffed, quote
    first = text.splitlines()[0]
    return max(DELIMITERS, key=lambda d: (first.count(d), d == ";")), '"'


def _records(text: str, delimiter: str, quote: str) -> list[tuple[int, int, list[str]]]:
    """``(first line, last line, cells)`` of every record of the CSV text."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote, strict=True)
    records: list[tuple[int, int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            records.append((start, reader.line_num, cells))
            start = reader.line_num + 1
    except csv.Error:
        line = reader.line_num
        raise TableError(f"guillemet non fermé ou mal placé : les lignes {start} à {line} se lisent comme une seule "
                         "cellule ; fermez le guillemet ou retirez-le",
                         f"unbalanced or misplaced quote: lines {start} to {line} read as one cell; close or remove "
                         "the quote") from None
    return records


def _read_csv(text: str, encoding: str, expected: set[str], forced: str | None) -> Table:
    delimiter, quote = _choose_delimiter(text, expected, forced)
    records = _records(text, delimiter, quote)
    at = header_index([cells for _, _, cells in records], expected)
    header = [h.strip() for h in records[at][2]] if records else []
    table = _table(header, "csv", expected, encoding, delimiter, records[at][0] if records else 1)
    for first, last, cells in records[at + 1:]:
        _check_merged(cells, delimiter, len(header), first, last)
        _add_row(table, first, cells)
    return table


def _table(header: list[str], fmt: str, expected: set[str], encoding: str | None, delimiter: str | None,
           line: int) -> Table:
    """An empty table for ``header`` (read on ``line``), or :class:`TableError` if it names a read column twice."""
    header = canonical(header, expected)
    refused = duplicated(header, expected)
    if refused is not None:
        raise TableError(*refused)
    return Table(header, [], fmt, encoding, delimiter, notes=[skipped_note(line)] if line > 1 else [])


def _add_row(table: Table, line: int, cells: list[str]) -> None:
    if any(c.strip() for c in cells):
        if sum(1 for c in cells[len(table.header):] if c.strip()):
            table.width_errors.append((line, len(cells)))
        table.rows.append((line, row_cells(table.header, cells)))


def _check_merged(cells: list[str], delimiter: str, width: int, first: int, last: int) -> None:
    if last == first or width < 2:
        return
    for cell in cells:
        if "\n" not in cell:
            continue
        swallowed = cell.split("\n")[1:]
        if any(part.count(delimiter) >= max(2, (width - 1) // 2) for part in swallowed):
            raise TableError(
                f"guillemet non fermé ligne {first} : les lignes {first} à {last} ont été fusionnées en une seule "
                "(une cellule commence par \" sans guillemet fermant) ; corrigez la ligne et réessayez",
                f"unbalanced quote on line {first}: lines {first} to {last} were merged into one (a cell opens "
                "a \" that is never closed); fix the line and try again")


def cell_text(value: Any) -> str:
    """A workbook cell as the text a French CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y" if value.time() == time(0) else "%d/%m/%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# a cell holding a formula and no computed value (<v> absent, or empty but not an empty text result)
_UNCOMPUTED = re.compile(rb'<c r="([A-Z]{1,3}[0-9]{1,7})"(?![^>]*t="str")[^>]*>\s*<f(?:[^>]*/>|[^>]*>[^<]*</f>)'
                         rb'\s*(?:<v\s*/>|<v></v>)?\s*</c>')


def _check_computed(data: bytes, sheet_path: str) -> None:
    """Refuse a sheet with a formula whose value was never computed (a workbook written by a
    program and never opened in a spreadsheet): openpyxl reads it as an empty cell."""
    from zipfile import ZipFile

    with ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read(sheet_path) if sheet_path in archive.namelist() else b""
    found = _UNCOMPUTED.search(xml)
    if found is not None:
        cell = found.group(1).decode()
        raise TableError(f"la cellule {cell} contient une formule sans valeur calculée (classeur créé par un "
                         "programme) : ouvrez-le et enregistrez-le dans Excel ou LibreOffice, puis réessayez",
                         f"cell {cell} holds a formula without its computed value (a workbook written by a "
                         "program): open and save it in Excel or LibreOffice, then try again")


def _read_xlsx(data: bytes, expected: set[str]) -> Table:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (BadZipFile, KeyError, ValueError, OSError):
        raise TableError("classeur Excel illisible (fichier abîmé ou d'un autre format)",
                         "unreadable Excel workbook (damaged file or another format)") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise TableError("le classeur n'a aucune feuille", "the workbook has no sheet")
        _check_computed(data, getattr(sheet, "_worksheet_path", ""))
        rows = sheet.iter_rows(values_only=True)
        top = [[cell_text(v) for v in values] for values in islice(rows, SEARCH_ROWS)]
        at = header_index(top, expected)
        header = [h.strip() for h in top[at]] if top else []
        while header and not header[-1]:
            header.pop()
        if not header:
            raise TableError("la première feuille du classeur est vide", "the workbook's first sheet is empty")
        table = _table(header, "xlsx", expected, None, None, at + 1)
        for line, cells in enumerate(chain(top[at + 1:], ([cell_text(v) for v in values] for values in rows)),
                                     start=at + 2):
            _add_row(table, line, cells)
        return table
    finally:
        workbook.close()
