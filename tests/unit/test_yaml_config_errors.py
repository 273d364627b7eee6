"""Every YAML configuration file (agreements, venues, consent sources, import profiles) that PyYAML
cannot turn into values (a date that does not exist, ``2028-02-30``; a file that is not UTF-8, as
a spreadsheet tool may save it) is a ConfigError naming the file, not a ValueError traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.venues import load_venues
from producers.adapters.consent import load_consent_sources
from producers.csv_profiles import load_profile
from schemas.agreements import load_agreements

REPO = Path(__file__).resolve().parents[2]


def _agreements(path: Path) -> Any:
    return load_agreements(path.parent)


LOADERS: dict[str, tuple[Callable[[Path], Any], Path]] = {
    "agreements": (_agreements, REPO / "deploy" / "agreements" / "observatoire-analytics.yaml"),
    "venues": (load_venues, REPO / "deploy" / "venues.yaml"),
    "consent sources": (load_consent_sources, REPO / "deploy" / "consent-sources.yaml"),
    "import profile": (lambda p: load_profile(str(p)), next((REPO / "deploy" / "import-profiles").glob("*.yaml"))),
}
BREAKS = {
    "impossible date": lambda text: text + "\nimpossible_day: 2028-02-30\n",
    "not utf-8": lambda text: (text + "\n# Opéra\n"),
}


@pytest.mark.parametrize("loader", LOADERS, ids=str)
@pytest.mark.parametrize("how", BREAKS, ids=str)
def test_a_yaml_file_the_parser_cannot_read_is_a_config_error_naming_it(loader: str, how: str, tmp_path: Path) -> None:
    load, original = LOADERS[loader]
    path = tmp_path / original.name
    text = BREAKS[how](original.read_text(encoding="utf-8"))
    path.write_bytes(text.encode("latin-1", errors="replace") if how == "not utf-8" else text.encode())
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert str(path) in str(refused.value)
