"""Stage 4: the planner, a pure function (desired, observed, recorded) → actions."""
