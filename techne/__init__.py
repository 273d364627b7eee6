"""Techné audience bus: glue package (CLI, settings, local infrastructure, demo)."""

__version__ = "0.1.0"
