"""Privacy stream processing: consent ledger, consent filter, pseudonymization, routing."""
