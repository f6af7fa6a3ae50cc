"""Stage 5: carry out planned actions, recording intent before every side effect."""
