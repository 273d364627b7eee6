"""Event catalogue: Avro schemas (source of truth in ``avro/``), codec and pydantic models."""

from schemas.codec import CATALOGUE, Catalogue

__all__ = ["CATALOGUE", "Catalogue"]
