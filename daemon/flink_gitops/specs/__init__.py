"""Stage 2: job specs: the schema (pydantic models), loading a tree into a validated
desired state, change classes and the spec hash."""
