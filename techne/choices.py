"""The closed sets of values some CLI options take: typer refuses any other value on the option
itself (exit 2, the choices listed) before the command runs, instead of a KeyError deep in a
renderer. Commands use ``.value``."""

from __future__ import annotations

from enum import StrEnum


class Lang(StrEnum):
    fr = "fr"
    en = "en"


class LangOrBoth(StrEnum):
    fr = "fr"
    en = "en"
    both = "both"


class ReceiptFormat(StrEnum):
    json = "json"
    text = "text"
