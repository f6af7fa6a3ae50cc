"""Stage 1 of the pipeline: where the desired state's files come from.

``tree`` defines the read-only view of one revision that the spec loader
consumes; ``git`` (the only module that imports GitPython) fetches revisions
from a remote and serves them as trees.
"""
