"""Shared by several test modules (tests never import each other)."""

from __future__ import annotations


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines of an env file (single quotes: literal, as compose reads them)."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key] = value[1:-1] if value.startswith("'") and value.endswith("'") else value
    return values
