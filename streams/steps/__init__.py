"""Pure processing steps (no I/O): consent decisions, pseudonymization, routing."""
