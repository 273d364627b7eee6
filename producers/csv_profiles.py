"""CSV mapping profiles (``deploy/import-profiles/<name>.yaml``) and value conversion (pure).

A profile says how to read one kind of export (encoding, separator, date formats, time zone)
and how to build one canonical event from each row: ``fields`` maps an event field path
(``customer.email``, ``quantity``…) to a ``column`` of the file (or a constant ``value``), with a
``type`` and an optional ``map`` of the vendor's labels to the catalogue's symbols.

Types: ``str`` (default), ``int``, ``money`` (``"1 234,50 €"`` -> 123450 minor units), ``decimal``
(``"5,5"`` -> 5.5), ``list`` (``"a, b|c"`` -> ``["a", "b", "c"]``; with a ``map``, each item is
mapped), ``datetime`` (French formats such as ``25/12/2026 20:30`` or ``25 déc. 2026
20h30``, in the profile's time zone), ``date``, ``bool`` (oui/non, 1/0, x). An empty cell leaves the
field out. :func:`convert` raises :class:`CellError` with a reason (never the cell's value).

``id_columns`` name the vendor ids that identify a row (order id, ticket id…): the event id is
uuid5 of venue + event type + those values, so importing the same file twice yields the same ids.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import ConfigError
from core.settings import DEFAULT_IMPORT_PROFILES
from producers.header_row import column_key

PROFILE_DIR = DEFAULT_IMPORT_PROFILES  # settings.import_profiles_dir in the CLI
MONTHS = {"janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fevr": 2, "mars": 3, "avril": 4,
          "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "août": 8, "aout": 8, "septembre": 9, "sept": 9,
          "octobre": 10, "oct": 10, "novembre": 11, "nov": 11, "décembre": 12, "decembre": 12, "déc": 12, "dec": 12}
_MONTH_RE = re.compile(r"\b(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?(?=\s|$)", re.IGNORECASE)
EXAMPLE_MOMENT = datetime(2026, 12, 25, 20, 30)
TRUE, FALSE = {"oui", "o", "yes", "y", "1", "x", "vrai", "true"}, {"non", "n", "no", "0", "", "faux", "false"}


class CellError(ValueError):
    """A cell cannot be converted; the message (English; ``fr``: French) is a reason safe to
    print (no cell value)."""

    def __init__(self, en: str, fr: str | None = None) -> None:
        super().__init__(en)
        self.en, self.fr = en, fr or en


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str | None = None
    value: Any = None
    type: Literal["str", "int", "money", "decimal", "datetime", "date", "bool", "list"] = "str"
    map: dict[str, Any] | None = None
    default: Any = None

    @model_validator(mode="after")
    def _source(self) -> FieldSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of column or value")
        return self


class Profile(BaseModel):
    """One mapping profile, validated at load."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    event_type: str
    encoding: Literal["auto", "utf-8", "utf-8-sig", "latin-1", "cp1252"] = "auto"
    delimiter: str = Field(";", min_length=1, max_length=1)
    date_formats: list[str] = Field(default_factory=lambda: ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"])
    timezone: str = "Europe/Paris"
    source_system: str = "csv-import"
    id_columns: list[str] = Field(min_length=1)
    fields: dict[str, FieldSpec]

    @property
    def columns(self) -> set[str]:
        return {s.column for s in self.fields.values() if s.column} | set(self.id_columns)

    def column_of(self, field_path: str) -> str:
        """The column a failing event field came from (the field path itself if constant or unknown)."""
        spec = self.fields.get(field_path)
        return spec.column if spec and spec.column else field_path


def load_profile(name_or_path: str, directory: Path = PROFILE_DIR) -> Profile:
    """A profile by name (``<directory>/<name>.yaml``, ``settings.import_profiles_dir`` in the CLI) or
    path; :class:`ConfigError` if invalid."""
    path = Path(name_or_path) if name_or_path.endswith((".yaml", ".yml")) else directory / f"{name_or_path}.yaml"
    try:
        return Profile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        known = sorted(p.stem for p in directory.glob("*.yaml"))
        raise ConfigError(f"no import profile '{name_or_path}' (known: {', '.join(known)})") from None
    except (OSError, yaml.YAMLError, ValueError) as exc:  # ValueError: pydantic's, a date 2028-02-30, not UTF-8
        raise ConfigError(f"{path}: {exc}") from exc


NUMBER_MAX_DIGITS = 18
"""Largest magnitude of a number cell: below 10**18 (an Avro long holds 9.2 * 10**18)."""


_SPACES_AND_UNITS = re.compile("[\\s\u00a0\u202f'’]|€|EUR")
"""What a number cell may hold besides digits, sign and separators: spaces (of every width),
apostrophes grouping thousands (1'234,50), the currency."""


def _number(raw: str) -> Decimal:
    """A finite number below ``10**NUMBER_MAX_DIGITS``: ``NaN``, ``Infinity`` or ``1e999999999``
    (which ``Decimal`` reads, and ``int()`` would expand digit by digit) is a cell error."""
    cleaned = _SPACES_AND_UNITS.sub("", raw)
    # the decimal separator is the last of ',' and '.', written once; the other one groups digits
    # (1.234,50 and 1,234.50 are both 1234.50; a lone ',' is a decimal comma, as French tools write)
    decimal = max(",", ".", key=cleaned.rfind) if "," in cleaned or "." in cleaned else None
    if decimal is not None:
        grouping = "." if decimal == "," else ","
        whole, _, fraction = cleaned.rpartition(decimal)
        if decimal in whole or grouping in fraction:
            raise CellError("not a number (its ',' and '.' separators contradict each other)",
                            "pas un nombre (ses séparateurs ',' et '.' se contredisent)")
        cleaned = whole.replace(grouping, "") + "." + fraction
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise CellError("not a number", "pas un nombre") from None
    if not value.is_finite() or (value and value.adjusted() >= NUMBER_MAX_DIGITS):
        raise CellError(f"not a number of at most {NUMBER_MAX_DIGITS} digits",
                        f"nombre invalide ou de plus de {NUMBER_MAX_DIGITS} chiffres")
    return value


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_SERIAL = re.compile(r"\d{5}(?:[.,]\d+)?")
EXCEL_EPOCH = datetime(1899, 12, 30)
SERIAL_DAYS = (20_000, 80_000)
"""Excel serial numbers read as dates (1954-10-03 .. 2119-01-10): the day count a workbook stores,
shown when the cell is not formatted as a date."""


def _iso_or_serial(text: str) -> datetime | None:
    """Whatever the profile's formats: an ISO 8601 date/time (unambiguous), or an Excel serial
    number of days (a date column cannot hold another five-digit number)."""
    if _ISO.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    if _SERIAL.fullmatch(text):
        days = Decimal(text.replace(",", "."))
        if SERIAL_DAYS[0] <= days < SERIAL_DAYS[1]:
            return EXCEL_EPOCH + timedelta(seconds=int((days * 86_400).to_integral_value()))
    return None


def _datetime(raw: str, profile: Profile) -> datetime:
    text = _MONTH_RE.sub(lambda m: f"{MONTHS[m.group(1).lower()]:02d}", raw.strip())
    text = re.sub(r"(\d{1,2})\s+(\d{2})\s+(\d{4})", r"\1/\2/\3", text)  # 25 12 2026 (from a month name)
    text = re.sub(r"(\d{1,2})h(\d{2})?", lambda m: f"{m.group(1)}:{m.group(2) or '00'}", text)
    text = re.sub(r"\s+(à|a)\s+", " ", text)
    for fmt in profile.date_formats:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=ZoneInfo(profile.timezone)) if parsed.tzinfo is None else parsed
    other = _iso_or_serial(text)
    if other is not None:
        return other.replace(tzinfo=ZoneInfo(profile.timezone)) if other.tzinfo is None else other
    examples = ", ".join(EXAMPLE_MOMENT.strftime(f) for f in profile.date_formats)
    raise CellError(f"not a date/time in the formats {', '.join(profile.date_formats)} (e.g. {examples})",
                    f"date ou heure illisible (formats attendus, par exemple : {examples})")


def _mapped(labels: dict[str, Any], raw: str) -> Any:
    """The value of label ``raw``, written as in the profile or differing only in case, spaces or
    accent encoding (« réduit », « RÉDUIT » for « Réduit »); None if no label is it."""
    if raw in labels:
        return labels[raw]
    key = column_key(raw)
    return next((value for label, value in labels.items() if column_key(str(label)) == key), None)


def _unknown_label(labels: dict[str, Any]) -> CellError:
    known = ", ".join(sorted(map(str, labels))[:12])
    return CellError(f"unknown label (known: {known})", f"libellé inconnu (libellés connus : {known})")


def convert(raw: str, spec: FieldSpec, profile: Profile) -> Any:
    """The value of one field from its cell; None leaves the field out."""
    raw = raw.strip()
    if spec.type == "list":
        items = [i.strip() for i in re.split(r"[,|;]", raw) if i.strip()]
        if spec.map is None:
            return items or spec.default
        unknown = [i for i in items if _mapped(spec.map, i) is None]
        if unknown:
            raise _unknown_label(spec.map)
        return [_mapped(spec.map, i) for i in items] or spec.default
    if spec.map is not None and raw:
        mapped = _mapped(spec.map, raw)
        if mapped is None and spec.default is None:
            raise _unknown_label(spec.map)
        return mapped if mapped is not None else spec.default
    if not raw:
        return spec.default
    if spec.type == "str":
        return raw
    if spec.type == "int":
        value = _number(raw)
        if value != value.to_integral_value():
            raise CellError("not a whole number", "pas un nombre entier")
        return int(value)
    if spec.type == "money":
        return int((_number(raw) * 100).quantize(Decimal(1)))
    if spec.type == "decimal":
        return float(_number(raw))
    if spec.type == "bool":
        if raw.lower() not in TRUE | FALSE:
            raise CellError("not a yes/no value", "pas une valeur oui/non")
        return raw.lower() in TRUE
    moment = _datetime(raw, profile)
    return moment.date() if spec.type == "date" else moment.isoformat()


def build_event(row: dict[str, str], profile: Profile) -> tuple[dict[str, Any], list[tuple[str, CellError]]]:
    """The event payload of one row and its cell errors ``[(column, error)]``."""
    event: dict[str, Any] = {"type": profile.event_type, "source_system": profile.source_system}
    errors: list[tuple[str, CellError]] = []
    for path, spec in profile.fields.items():
        try:
            value = spec.value if spec.column is None else convert(row.get(spec.column, ""), spec, profile)
        except CellError as exc:
            errors.append((spec.column or path, exc))
            continue
        if value is None:
            continue
        target = event
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value.isoformat() if isinstance(value, date) else value
    return event, errors
