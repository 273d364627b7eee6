"""Generated pydantic models of the catalogue (see schemas/gen_models.py)."""
