"""``python -m flink_gitops`` is the same as the ``flink-gitops`` command."""

from flink_gitops.cli import entry

entry()
