"""The bottom layer: the bus's shared contracts (settings, errors, identity, topic names, dead-letter
contract, metrics helpers, Kafka auth, venues). Imports nothing of the bus above it."""
