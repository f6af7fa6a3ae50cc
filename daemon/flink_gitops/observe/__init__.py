"""Stage 3: what Flink is actually running, one overview call per cluster per cycle."""
