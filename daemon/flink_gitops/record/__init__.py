"""Stage 6: the daemon's memory and evidence: the state store and the audit trail."""
