"""The webhook gateway (ASGI app): signed venue events in, Avro records on raw topics out."""

from producers.gateway.app import create_app

__all__ = ["create_app"]
