"""Venue side: the webhook gateway and the one Kafka producer."""
