"""French wording of the validation messages an imported row can get (pure).

:func:`french` turns the English message of a schema error (pydantic's wording, as
:func:`producers.ingest.field_errors` reports it) into French for the venue's staff; a message
it does not know is kept, prefixed so that the reader still sees it was refused. Messages never
hold the refused value (pydantic's ``msg`` does not), only the constraint.
"""

from __future__ import annotations

import re

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Field required$"), "valeur obligatoire manquante"),
    (re.compile(r"^Input should be a valid integer"), "nombre entier attendu"),
    (re.compile(r"^Input should be a valid number"), "nombre attendu"),
    (re.compile(r"^Input should be a valid (date|datetime)"), "date ou heure attendue"),
    (re.compile(r"^Input should be a valid boolean"), "valeur oui/non attendue"),
    (re.compile(r"^Input should be a valid string"), "texte attendu"),
    (re.compile(r"^Input should be greater than or equal to (.+)$"), r"doit être supérieur ou égal à \1"),
    (re.compile(r"^Input should be greater than (.+)$"), r"doit être supérieur à \1"),
    (re.compile(r"^Input should be less than or equal to (.+)$"), r"doit être inférieur ou égal à \1"),
    (re.compile(r"^Input should be less than (.+)$"), r"doit être inférieur à \1"),
    (re.compile(r"^Input should be (.+)$"), r"valeur attendue : \1"),
    (re.compile(r"^String should match pattern"), "format invalide"),
    (re.compile(r"^String should have at most (\d+) characters?$"), r"\1 caractères au plus"),
    (re.compile(r"^String should have at least (\d+) characters?$"), r"\1 caractères au moins"),
    (re.compile(r"^List should have at least (\d+) items?"), r"\1 élément(s) au moins"),
    (re.compile(r"^Extra inputs are not permitted$"), "champ non prévu par le catalogue"),
    (re.compile(r"^value is not a valid email address"), "adresse e-mail invalide"),
    (re.compile(r"^customer needs an email or a customer_id"), "il faut une adresse e-mail ou un n° client"),
]


def french(message: str) -> str:
    """The French wording of ``message`` (see module doc)."""
    text = message.strip()
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
    for pattern, replacement in _RULES:
        match = pattern.search(text)
        if match:
            return match.expand(replacement).replace(" or ", " ou ")
    return f"valeur refusée : {text}"
